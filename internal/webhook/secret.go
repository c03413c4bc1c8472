package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// Secret lengths accepted, in bytes after base64 decoding (the spec: 24 to 64).
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// ParseSecrets reads a secret file: one whsec_<base64> secret a line,
// blank lines and lines starting with # ignored. Every secret signs each
// request (one signature each), so two lines are a rotation: add the new
// secret, let the app accept it, then remove the old one. Errors name the
// line, never the secret.
func ParseSecrets(b []byte) ([][]byte, error) {
	var out [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(line, secretPrefix)
		if !ok {
			return nil, fmt.Errorf("line %d: a secret must start with %s", i+1, secretPrefix)
		}
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: the secret after %s is not standard base64", i+1, secretPrefix)
		}
		if len(key) < minSecretBytes || len(key) > maxSecretBytes {
			return nil, fmt.Errorf("line %d: the secret is %d bytes; it must be %d to %d (openssl rand -base64 32)",
				i+1, len(key), minSecretBytes, maxSecretBytes)
		}
		out = append(out, key)
	}
	if len(out) == 0 {
		return nil, errors.New("no secret: write one line whsec_<base64 of 32 random bytes>")
	}
	return out, nil
}

// Sign is the webhook-signature header of one attempt: "v1,<base64
// HMAC-SHA256 of {id}.{timestamp}.{body}>" for each secret, separated by
// spaces.
func Sign(secrets [][]byte, id string, timestamp int64, body []byte) string {
	var sb strings.Builder
	ts := strconv.FormatInt(timestamp, 10)
	for i, key := range secrets {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return sb.String()
}
