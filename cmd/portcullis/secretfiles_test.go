package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubeletLayout rewrites the named files of dir as the kubelet's atomic
// writer lays out a Secret volume: the content in a "..<timestamp>"
// directory at mode, "..data" pointing at that directory, and each NAME a
// symlink to "..data/NAME".
func kubeletLayout(t *testing.T, dir string, mode os.FileMode, names ...string) {
	t.Helper()
	stamp := "..2025_01_02_03_04_05.123456789"
	if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		inner := filepath.Join(dir, stamp, n)
		if err := os.Rename(p, inner); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(inner, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", n), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(stamp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// runBinary runs the portcullis binary with args and returns its exit
// code and combined output.
func runBinary(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// Secret files other users can read are refused at start, by check-config
// and serve alike, with the field, the file and the fix; a Kubernetes
// Secret volume may grant its group (the pod's fsGroup) read.
func TestSecretFileModes_Binary(t *testing.T) {
	bin := buildBinary(t)
	secrets := []struct{ field, file string }{
		{"saml.keyFile", "sp.key"},
		{"session.keysFile", "session.keys"},
		{"scim.tokensFile", "scim.tokens"},
		{"adminTokenFile", "admin.token"},
	}
	setup := func(t *testing.T) (dir, cfg string) {
		dir = t.TempDir()
		sc := writeServeConfig(t, dir)
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("admin-token-for-the-test-0123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		rebind(t, sc.path, "127.0.0.1:0", "adminTokenFile: admin.token\n")
		return dir, sc.path
	}

	for _, s := range secrets {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
			t.Run(fmt.Sprintf("check-config refuses %s at %04o", s.file, mode), func(t *testing.T) {
				dir, cfg := setup(t)
				p := filepath.Join(dir, s.file)
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
				code, out := runBinary(t, bin, "check-config", "--config", cfg)
				if code != 1 {
					t.Fatalf("check-config exit %d, want 1; output:\n%s", code, out)
				}
				for _, want := range []string{s.field + ": ", p, fmt.Sprintf("mode %04o", mode), "run: chmod 600 " + p} {
					if !strings.Contains(out, want) {
						t.Errorf("output lacks %q:\n%s", want, out)
					}
				}
			})
		}
	}

	t.Run("check-config accepts owner-only files", func(t *testing.T) {
		dir, cfg := setup(t)
		for _, s := range secrets {
			if err := os.Chmod(filepath.Join(dir, s.file), 0o400); err != nil {
				t.Fatal(err)
			}
		}
		if code, out := runBinary(t, bin, "check-config", "--config", cfg); code != 0 || !strings.Contains(out, "config ok") {
			t.Fatalf("check-config exit %d:\n%s", code, out)
		}
	})

	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o400, true}, {0o440, true}, {0o444, false}, {0o460, false}} {
		t.Run(fmt.Sprintf("Kubernetes Secret volume at %04o", tc.mode), func(t *testing.T) {
			dir, cfg := setup(t)
			names := []string{"sp.key", "sp.crt", "session.keys", "scim.tokens", "admin.token"}
			kubeletLayout(t, dir, tc.mode, names...)
			code, out := runBinary(t, bin, "check-config", "--config", cfg)
			if tc.ok {
				if code != 0 {
					t.Fatalf("check-config exit %d:\n%s", code, out)
				}
				return
			}
			if code != 1 {
				t.Fatalf("check-config exit %d, want 1:\n%s", code, out)
			}
			for _, want := range []string{"saml.keyFile: ", "Kubernetes Secret volume", "defaultMode", "0440"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "chmod") {
				t.Errorf("output suggests chmod on a read-only Secret volume:\n%s", out)
			}
		})
	}

	t.Run("serve refuses a world-readable sp.key", func(t *testing.T) {
		dir, cfg := setup(t)
		p := filepath.Join(dir, "sp.key")
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--config", cfg)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("serve ended with %v, want exit 1:\n%s", err, &out)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("serve started with a world-readable sp.key:\n%s", &out)
		}
		if !strings.Contains(out.String(), "saml.keyFile: "+p+" has mode 0644") || !strings.Contains(out.String(), "chmod 600 "+p) {
			t.Errorf("serve output does not name the field, file and fix:\n%s", &out)
		}
	})

	t.Run("serve starts from a Kubernetes Secret volume at 0440", func(t *testing.T) {
		dir, cfg := setup(t)
		kubeletLayout(t, dir, 0o440, "sp.key", "sp.crt", "session.keys", "scim.tokens", "admin.token")
		p := startBinary(t, bin, cfg)
		p.stop(t)
	})
}
