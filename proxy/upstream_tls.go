package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
)

// tlsRecheck is how often, at most, the upstream TLS files are checked for
// a change: once per new connection, no more often than this.
const tlsRecheck = 5 * time.Second

// upstreamTLSConfig builds the TLS settings for an https upstream from
// upstreamTLS. With caFile the upstream's chain is verified against that
// pool, in VerifyConnection, so that the pool can change under a live
// transport (crypto/tls's documented pattern for custom verification:
// InsecureSkipVerify only turns off the built-in check that
// VerifyConnection replaces). The client certificate is handed over by
// GetClientCertificate. Both read their files again when they change.
func upstreamTLSConfig(cfg *config.Config, log *zap.Logger, recheck time.Duration) (*tls.Config, error) {
	t := cfg.UpstreamTLS
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if tc.ServerName == "" && cfg.UpstreamURL != nil {
		tc.ServerName = cfg.UpstreamURL.Hostname()
	}
	if t.CAFile == "" && t.CertFile == "" {
		tc.InsecureSkipVerify = t.InsecureSkipVerify
		return tc, nil
	}
	f := &tlsFiles{
		caFile: cfg.Resolve(t.CAFile), certFile: cfg.Resolve(t.CertFile), keyFile: cfg.Resolve(t.KeyFile),
		log: log, recheck: recheck,
	}
	if err := f.load(); err != nil {
		return nil, err
	}
	if f.caFile != "" {
		name := tc.ServerName
		tc.InsecureSkipVerify = true // VerifyConnection verifies instead
		tc.VerifyConnection = func(cs tls.ConnectionState) error { return f.verify(cs, name) }
	} else {
		tc.InsecureSkipVerify = t.InsecureSkipVerify
	}
	if f.certFile != "" {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			_, cert := f.current()
			return cert, nil
		}
	}
	return tc, nil
}

// tlsFiles holds what the upstream TLS files say, read again when a file's
// size or modification time changes. A file that fails to load keeps the
// last good version in use and is logged.
type tlsFiles struct {
	caFile, certFile, keyFile string
	log                       *zap.Logger
	recheck                   time.Duration

	mu      sync.Mutex
	checked time.Time
	stamps  [3]fileStamp
	pool    *x509.CertPool
	cert    *tls.Certificate
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{size: -1}
	}
	return fileStamp{fi.Size(), fi.ModTime()}
}

// load reads every file; at start its error stops Portcullis.
func (f *tlsFiles) load() error {
	stamps := [3]fileStamp{stampOf(f.caFile), stampOf(f.certFile), stampOf(f.keyFile)}
	var pool *x509.CertPool
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return fmt.Errorf("upstreamTLS.caFile: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("upstreamTLS.caFile %s: no PEM certificate in it", f.caFile)
		}
	}
	var cert *tls.Certificate
	if f.certFile != "" {
		c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return fmt.Errorf("upstreamTLS.certFile/keyFile: %w", err)
		}
		cert = &c
	}
	f.mu.Lock()
	f.stamps, f.pool, f.cert, f.checked = stamps, pool, cert, time.Now()
	f.mu.Unlock()
	return nil
}

// current returns the pool and certificate in force, reloading them first
// when a file changed since the last check.
func (f *tlsFiles) current() (*x509.CertPool, *tls.Certificate) {
	f.mu.Lock()
	due := time.Since(f.checked) >= f.recheck
	if due {
		f.checked = time.Now()
	}
	stamps := f.stamps
	f.mu.Unlock()
	if due && stamps != [3]fileStamp{stampOf(f.caFile), stampOf(f.certFile), stampOf(f.keyFile)} {
		if err := f.load(); err != nil {
			f.log.Error("upstream TLS files changed but cannot be loaded; the last good ones stay in use", zap.Error(err))
		} else {
			f.log.Info("upstream TLS files reloaded")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pool, f.cert
}

// verify checks the upstream's chain against the current CA pool and name.
func (f *tlsFiles) verify(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("upstream sent no certificate")
	}
	pool, _ := f.current()
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName: name, Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}
