package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubernetesSecretMount_TellsTheAtomicWriterLayoutApart builds each
// layout in a temporary directory and asks whether "sp.key" (or the path
// given) lies in a kubelet-written volume.
func TestKubernetesSecretMount_TellsTheAtomicWriterLayoutApart(t *testing.T) {
	t.Parallel()
	const stamp = "..2025_01_02_03_04_05.123456789"
	type layout func(t *testing.T, dir string) string // returns the path to ask about
	write := func(t *testing.T, p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("secret"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, target, p string) {
		t.Helper()
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		layout layout
		want   bool
	}{
		{"plain file", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "sp.key"))
			return filepath.Join(dir, "sp.key")
		}, false},
		{"kubelet layout", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, stamp, "sp.key"))
			link(t, stamp, filepath.Join(dir, "..data"))
			link(t, filepath.Join("..data", "sp.key"), filepath.Join(dir, "sp.key"))
			return filepath.Join(dir, "sp.key")
		}, true},
		{"kubelet layout, item in a subdirectory", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, stamp, "keys", "sp.key"))
			link(t, stamp, filepath.Join(dir, "..data"))
			link(t, filepath.Join("..data", "keys"), filepath.Join(dir, "keys"))
			return filepath.Join(dir, "keys", "sp.key")
		}, true},
		{"symlink to a file elsewhere", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "real", "sp.key"))
			link(t, filepath.Join("real", "sp.key"), filepath.Join(dir, "sp.key"))
			return filepath.Join(dir, "sp.key")
		}, false},
		{"..data link without ..data", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "..data", "sp.key")) // a directory, not the symlink
			link(t, filepath.Join("..data", "sp.key"), filepath.Join(dir, "sp.key"))
			return filepath.Join(dir, "sp.key")
		}, false},
		{"..data pointing out of the volume", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "elsewhere", "sp.key"))
			link(t, filepath.Join(dir, "elsewhere"), filepath.Join(dir, "..data"))
			link(t, filepath.Join("..data", "sp.key"), filepath.Join(dir, "sp.key"))
			return filepath.Join(dir, "sp.key")
		}, false},
		{"link to ..data under another name", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, stamp, "other.key"))
			link(t, stamp, filepath.Join(dir, "..data"))
			link(t, filepath.Join("..data", "other.key"), filepath.Join(dir, "sp.key"))
			return filepath.Join(dir, "sp.key")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.layout(t, t.TempDir())
			if got := KubernetesSecretMount(p); got != tt.want {
				t.Errorf("KubernetesSecretMount(%s) = %v, want %v", p, got, tt.want)
			}
		})
	}
}

// TestCheckSecretFiles_ReportsEveryOpenFileWithItsField checks the list of
// secret fields and that every problem is reported at once.
func TestCheckSecretFiles_ReportsEveryOpenFileWithItsField(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"sp.key": 0o644, "session.keys": 0o600, "admin.token": 0o640, "scim.tokens": 0o604, "store.dsn": 0o660,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	c := &Config{baseDir: dir, AdminTokenFile: "admin.token"}
	c.SAML.KeyFile, c.SAML.CertFile = "sp.key", "sp.crt"
	c.Session.KeysFile = "session.keys"
	c.SCIM.Enabled, c.SCIM.TokensFile = true, "scim.tokens"
	c.Store.Driver, c.Store.DSNFile = "postgres", "store.dsn"
	err := c.CheckSecretFiles()
	if err == nil {
		t.Fatal("no error")
	}
	text := err.Error()
	for _, want := range []string{
		"saml.keyFile: " + filepath.Join(dir, "sp.key") + " has mode 0644, which gives its group and every other user",
		"adminTokenFile: " + filepath.Join(dir, "admin.token") + " has mode 0640, which gives its group access",
		"scim.tokensFile: " + filepath.Join(dir, "scim.tokens") + " has mode 0604, which gives every other user",
		"store.dsnFile: " + filepath.Join(dir, "store.dsn") + " has mode 0660",
		"run: chmod 600 " + filepath.Join(dir, "sp.key"),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("error lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "session.keysFile") || strings.Contains(text, "certFile") {
		t.Errorf("error names an owner-only or public file:\n%s", text)
	}
}
