package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/proxy"
	"github.com/portcullis-sso/portcullis/samlsp"
)

// writeKeys writes sp.key, sp.crt, session.keys and identity.keys (the
// identity token's P-256 key) into dir with mode 0600. It refuses to
// overwrite any existing file, and checks all of them before
// writing any, so a half-written set never replaces a working one.
func writeKeys(dir string, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	names := []string{"sp.key", "sp.crt", "session.keys", "identity.keys"}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	keyPEM, certPEM, err := samlsp.GenerateSPKeyPair("portcullis")
	if err != nil {
		return fmt.Errorf("generate SP key: %w", err)
	}
	idKey, err := proxy.GenerateIdentityKey()
	if err != nil {
		return fmt.Errorf("generate identity key: %w", err)
	}
	contents := [][]byte{keyPEM, certPEM, session.GenerateKeys(), idKey}
	for i, n := range names {
		p := filepath.Join(dir, n)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(contents[i]); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	return nil
}
