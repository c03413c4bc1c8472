package samlsp

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// spKeyBits is the size of the RSA key GenerateSPKeyPair makes.
const spKeyBits = 3072

// GenerateSPKeyPair returns a new RSA 3072 key (PKCS #8 PEM) and a
// self-signed certificate for it (PEM) valid for ten years, for
// `portcullis keys`. IdPs use the certificate only as a container for the
// public key, so self-signed is what they expect.
func GenerateSPKeyPair(commonName string) (keyPEM, certPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, spKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate rsa key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial number: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour), // tolerate a slightly slow IdP clock
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return keyPEM, certPEM, nil
}

// loadKeyPair reads the SP's RSA private key and its certificate. Errors
// name the config field and the file.
func loadKeyPair(keyFile, certFile string) (*rsa.PrivateKey, *x509.Certificate, error) {
	if keyFile == "" {
		return nil, nil, errors.New("saml.keyFile: required")
	}
	if certFile == "" {
		return nil, nil, errors.New("saml.certFile: required")
	}
	keyText, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml.keyFile: %w", err)
	}
	key, err := parsePrivateKey(keyText)
	if err != nil {
		return nil, nil, fmt.Errorf("saml.keyFile %s: %w", keyFile, err)
	}
	certText, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("saml.certFile: %w", err)
	}
	cert, err := parseCertificate(certText)
	if err != nil {
		return nil, nil, fmt.Errorf("saml.certFile %s: %w", certFile, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, fmt.Errorf("saml.certFile %s: certificate is not for the key in %s", certFile, keyFile)
	}
	return key, cert, nil
}

// parsePrivateKey reads the first private key PEM block: PKCS #8 or PKCS #1, RSA only.
func parsePrivateKey(text []byte) (*rsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, text = pem.Decode(text)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("key is %T, want RSA (AuthnRequests are signed with RSA-SHA256)", k)
			}
			return rk, nil
		case "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%s is not supported: want an unencrypted RSA key", block.Type)
		}
	}
}

// parseCertificate reads the first CERTIFICATE PEM block.
func parseCertificate(text []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, text = pem.Decode(bytes.TrimSpace(text))
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}
