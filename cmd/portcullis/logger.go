package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newLogger(format, level string, out io.Writer) (*zap.Logger, error) {
	lvl, enc, err := logEncoder(format, level)
	if err != nil {
		return nil, err
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), lvl)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(out)))), nil
}

// The access log is one line per request: written straight to out, it is a
// write system call per request, a large share of the proxy's own cost.
// The process logger buffers it instead, flushing at least every
// accessFlushInterval and when the buffer fills, and at exit (stop).
const (
	accessBufferSize    = 64 << 10
	accessFlushInterval = time.Second
)

// newProcessLogger is newLogger for the serving process: entries of the
// logger named "access" go through a buffer, everything else (audit
// events, errors) is written at once. stop flushes the buffer and must run
// after the servers have drained, so no access line is lost at shutdown.
func newProcessLogger(format, level string, out io.Writer) (log *zap.Logger, stop func(), err error) {
	lvl, enc, err := logEncoder(format, level)
	if err != nil {
		return nil, nil, err
	}
	direct := zapcore.Lock(zapcore.AddSync(out))
	buffered := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(out), Size: accessBufferSize, FlushInterval: accessFlushInterval}
	core := accessSplitCore{
		Core:   zapcore.NewCore(enc, direct, lvl),
		access: zapcore.NewCore(enc.Clone(), buffered, lvl),
	}
	log = zap.New(core, zap.ErrorOutput(direct))
	stop = func() {
		_ = buffered.Stop() // flushes
		_ = log.Sync()
	}
	return log, stop, nil
}

// accessSplitCore sends the entries of the logger named "access" to the
// access core and all others to the embedded one.
type accessSplitCore struct {
	zapcore.Core
	access zapcore.Core
}

func (c accessSplitCore) With(fields []zapcore.Field) zapcore.Core {
	return accessSplitCore{Core: c.Core.With(fields), access: c.access.With(fields)}
}

func (c accessSplitCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.LoggerName == "access" {
		return c.access.Check(e, ce)
	}
	return c.Core.Check(e, ce)
}

func (c accessSplitCore) Sync() error {
	return errors.Join(c.access.Sync(), c.Core.Sync())
}

func logEncoder(format, level string) (zapcore.Level, zapcore.Encoder, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return lvl, nil, fmt.Errorf("--log-level: unknown level %q", level)
	}
	var enc zapcore.Encoder
	switch format {
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "ts"
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		ec.EncodeDuration = zapcore.SecondsDurationEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeDuration = zapcore.StringDurationEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return lvl, nil, fmt.Errorf("--log-format: must be json or console, not %q", format)
	}
	return lvl, enc, nil
}
