package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretFile is one configured file that holds a secret.
type SecretFile struct {
	Field string // "saml.keyFile"
	Path  string // resolved against the config file's directory
}

// SecretFiles lists the configured files that hold secrets: the SP private
// key, the session keys, the admin token, the SCIM tokens (with SCIM on) and
// the PostgreSQL DSN file and the webhook secrets. Certificates and IdP metadata are public.
func (c *Config) SecretFiles() []SecretFile {
	var out []SecretFile
	add := func(field, p string) {
		if p != "" {
			out = append(out, SecretFile{Field: field, Path: c.Resolve(p)})
		}
	}
	add("saml.keyFile", c.SAML.KeyFile)
	add("session.keysFile", c.Session.KeysFile)
	add("adminTokenFile", c.AdminTokenFile)
	add("upstreamTLS.keyFile", c.UpstreamTLS.KeyFile)
	if c.IdentityToken.Enabled {
		add("identityToken.keysFile", c.IdentityToken.KeysFile)
	}
	if c.SCIM.Enabled {
		add("scim.tokensFile", c.SCIM.TokensFile)
	}
	if c.Store.Driver == "postgres" {
		add("store.dsnFile", c.Store.DSNFile)
	}
	for i, w := range c.Events.Webhooks {
		add(fmt.Sprintf("events.webhooks[%d].secretFile", i), w.SecretFile)
	}
	return out
}

// CheckSecretFiles refuses secret files that other users of the host may
// read: every problem at once, as a *ValidationError. A file must be
// readable by its owner only (no group or other bits), except in a
// Kubernetes Secret volume (see KubernetesSecretMount), where group read is
// allowed: the group is the pod's fsGroup. A file that cannot be stat'ed is
// left to the reader, whose error names it.
func (c *Config) CheckSecretFiles() error {
	var ps problems
	for _, f := range c.SecretFiles() {
		if msg := secretFileProblem(f.Path); msg != "" {
			ps.add(f.Field, c.Line(f.Field), "%s", msg)
		}
	}
	return ps.err()
}

// secretFileProblem is what is wrong with the mode of the secret file at p,
// or "".
func secretFileProblem(p string) string {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	perm := fi.Mode().Perm()
	if KubernetesSecretMount(p) {
		if perm&0o037 == 0 {
			return ""
		}
		return fmt.Sprintf("%s has mode %04o, which %s; it is in a Kubernetes Secret volume: "+
			"set the volume's defaultMode (or the item's mode) to 0400 or 0440", p, perm, exposure(perm&0o037))
	}
	if perm&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("%s has mode %04o, which %s; run: chmod 600 %s", p, perm, exposure(perm&0o077), p)
}

// exposure says who besides the owner the bits give access to.
func exposure(bits fs.FileMode) string {
	switch {
	case bits&0o070 != 0 && bits&0o007 != 0:
		return "gives its group and every other user of the host access to this secret"
	case bits&0o007 != 0:
		return "gives every other user of the host access to this secret"
	}
	return "gives its group access to this secret"
}

// KubernetesSecretMount reports whether p lies in a volume the kubelet
// wrote with its atomic writer (Secret, ConfigMap and projected volumes):
// p, or a directory above it, is a symlink "NAME -> ..data/NAME" beside a
// "..data" symlink to a "..<timestamp>" directory of the same volume. A
// plain file, or a symlink anywhere else, is not.
func KubernetesSecretMount(p string) bool {
	p = filepath.Clean(p)
	for {
		dir, name := filepath.Split(p)
		if name == "" || name == "." || name == ".." {
			return false
		}
		if target, err := os.Readlink(p); err == nil && target == filepath.Join("..data", name) {
			data, err := os.Readlink(filepath.Join(dir, "..data"))
			return err == nil && strings.HasPrefix(data, "..") && data != ".." && !strings.ContainsRune(data, '/')
		}
		parent := filepath.Clean(dir)
		if parent == p {
			return false
		}
		p = parent
	}
}
