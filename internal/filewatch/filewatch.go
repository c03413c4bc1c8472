// Package filewatch re-reads a file that may change while Portcullis runs
// (SCIM tokens, later organization files): it polls the file's size,
// modification time and inode, and reloads at once when asked (SIGHUP).
// A load that fails keeps what the caller had and is logged; the next
// change is tried again.
package filewatch

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
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
	dir   bool // path is a directory (NewDir)
}

type stamp struct {
	size  int64
	mod   time.Time
	inode uint64
	ok    bool
	sum   uint64 // a directory's: of every entry's name and stamp
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

// dirStampOf is a directory's stamp: its entries' names and their files'
// stamps (symlinks followed, so a Kubernetes ..data swap shows).
func dirStampOf(dir string) stamp {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return stamp{}
	}
	h := fnv.New64a()
	for _, e := range entries {
		st := stampOf(filepath.Join(dir, e.Name()))
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%t\n", e.Name(), st.size, st.mod.UnixNano(), st.inode, st.ok)
	}
	return stamp{ok: true, sum: h.Sum64()}
}

// NewDir returns a watcher of a directory: load runs whenever an entry is
// added, removed or changed (it reads what it needs itself; data is nil).
func NewDir(dir string, every time.Duration, load func() error, log *zap.Logger) *Watcher {
	w := &Watcher{path: dir, every: every, log: log, kick: make(chan struct{}, 1), dir: true}
	w.load = func([]byte) error { return load() }
	w.stamp = w.stampNow()
	return w
}

func (w *Watcher) stampNow() stamp {
	if w.dir {
		return dirStampOf(w.path)
	}
	return stampOf(w.path)
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
			if s := w.stampNow(); s != w.stamp {
				w.reload(s)
			}
		case <-w.kick:
			w.reload(w.stampNow())
		}
	}
}

func (w *Watcher) reload(s stamp) {
	w.stamp = s
	var data []byte
	var err error
	if !w.dir {
		data, err = os.ReadFile(w.path)
	}
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
