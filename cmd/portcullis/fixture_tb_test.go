package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// fixtureTB is the testing.TB a setup shared by several tests runs with:
// its cleanups run from TestMain (stop), after every test; a Fatal ends
// the setup (run) and every test that asks for it then fails with the
// message. Methods the helpers do not use are not implemented (the
// embedded nil TB panics on them).
type fixtureTB struct {
	testing.TB
	name string

	mu       sync.Mutex
	log      strings.Builder
	failed   strings.Builder
	cleanups []func()
}

type fixtureFatal struct{}

// run runs setup, turning a Fatal into a recorded failure.
func (f *fixtureTB) run(setup func()) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fixtureFatal); !ok {
				f.Errorf("panic: %v", r)
			}
		}
	}()
	setup()
}

// failure is what went wrong (with the setup's log), or "".
func (f *fixtureTB) failure() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed.Len() == 0 {
		return ""
	}
	return f.failed.String() + "\n--- setup log:\n" + f.log.String()
}

// stop runs the cleanups, last first, and reports failures on stderr.
func (f *fixtureTB) stop() {
	f.mu.Lock()
	cleanups := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		f.run(cleanups[i])
	}
	if msg := f.failure(); msg != "" {
		fmt.Fprintf(os.Stderr, "%s: %s\n", f.name, msg)
	}
}

func (f *fixtureTB) Helper()      {}
func (f *fixtureTB) Name() string { return f.name }
func (f *fixtureTB) Failed() bool { return f.failure() != "" }
func (f *fixtureTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fixtureTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(&f.log, format+"\n", args...)
}
func (f *fixtureTB) Log(args ...any) { f.Logf("%s", fmt.Sprint(args...)) }
func (f *fixtureTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(&f.failed, format+"\n", args...)
}
func (f *fixtureTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fixtureTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic(fixtureFatal{})
}
func (f *fixtureTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fixtureTB) TempDir() string {
	dir, err := os.MkdirTemp("", "portcullis-fixture-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
