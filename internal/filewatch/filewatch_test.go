package filewatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestWatcher_ReloadsChangesKeepsTheLastGoodAndAnswersReload(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "f")
	write := func(s string) {
		tmp := p + ".tmp" // replaced atomically, as editors and kubelet do
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	var mu sync.Mutex
	var loads []string
	current := "one"
	load := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		loads = append(loads, string(b))
		if strings.HasPrefix(string(b), "bad") {
			return errors.New("does not parse")
		}
		current = string(b)
		return nil
	}
	core, logs := observer.New(zap.InfoLevel)
	w := New(p, 10*time.Millisecond, load, zap.New(core))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitFor := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			c := current
			mu.Unlock()
			if c == want {
				return
			}
		}
		t.Fatalf("current never became %q", want)
	}
	write("two")
	waitFor("two")
	write("bad three")
	for deadline := time.Now().Add(5 * time.Second); logs.FilterMessageSnippet("cannot be loaded").Len() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a bad file was not reported")
		}
	}
	mu.Lock()
	if current != "two" {
		t.Errorf("after a bad file current is %q, want the last good two", current)
	}
	n := len(loads)
	mu.Unlock()
	w.Reload() // SIGHUP: reload even without a change
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		m := len(loads)
		mu.Unlock()
		if m > n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Reload did not load")
		}
	}
	write("four")
	waitFor("four")
}

func TestDirWatcher_AddChangeRemoveEachReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var mu sync.Mutex
	loads := 0
	w := NewDir(dir, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		loads++
		return nil
	}, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitLoads := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := loads
			mu.Unlock()
			if n >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("loads %d, want %d", n, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	p := filepath.Join(dir, "acme.yaml")
	if err := os.WriteFile(p, []byte("id: acme\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitLoads(1)
	if err := os.WriteFile(p, []byte("id: acme\nname: Acme Corp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitLoads(2)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	waitLoads(3)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if loads != 3 {
		t.Errorf("loads %d after three changes, want 3 (no reload without a change)", loads)
	}
}
