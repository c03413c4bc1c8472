// Package filewatch re-reads a file that may change while Portcullis runs
// (SCIM tokens, later organization files): it polls the file's size,
// modification time and inode, and reloads at once when asked (SIGHUP).
// A load that fails keeps what the caller had and is logged; the next
// change is tried again.
package filewatch

import (
	"context"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Watcher watches one file.
type Watcher struct {
	path  string
	every time.Duration
	load  func(data []byte) error
	log   *zap.Logger
	kick  chan struct{}
	stamp stamp
}

type stamp struct {
	size  int64
	mod   time.Time
	inode uint64
	ok    bool
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path) // follows symlinks: a Kubernetes volume's ..data swap shows
	if err != nil {
		return stamp{}
	}
	s := stamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.inode = uint64(st.Ino)
	}
	return s
}

// New returns a watcher that calls load with the file's content whenever it
// changes, checking every interval. The file is assumed loaded as it is
// now: the caller loads it once at start, where an error must stop it.
func New(path string, every time.Duration, load func(data []byte) error, log *zap.Logger) *Watcher {
	return &Watcher{path: path, every: every, load: load, log: log, kick: make(chan struct{}, 1), stamp: stampOf(path)}
}

// Reload asks for a reload now, changed or not (SIGHUP).
func (w *Watcher) Reload() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s := stampOf(w.path); s != w.stamp {
				w.reload(s)
			}
		case <-w.kick:
			w.reload(stampOf(w.path))
		}
	}
}

func (w *Watcher) reload(s stamp) {
	w.stamp = s
	data, err := os.ReadFile(w.path)
	if err == nil {
		err = w.load(data)
	}
	if err != nil {
		w.log.Error("file changed but cannot be loaded; the last good version stays in use",
			zap.String("file", w.path), zap.Error(err))
		return
	}
	w.log.Info("file reloaded", zap.String("file", w.path))
}
