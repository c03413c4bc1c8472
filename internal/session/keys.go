package session

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// ParseKeys reads a session keys file: one pair a line, newest first, as
// "<hash key> <block key>" in standard base64. Blank lines and lines starting
// with # are ignored. The hash key is at least 32 bytes, the block key 32.
func ParseKeys(data []byte) ([]KeyPair, error) {
	var pairs []KeyPair
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want two base64 keys separated by a space", line)
		}
		hash, err := base64.StdEncoding.DecodeString(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: hash key is not base64", line)
		}
		block, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: block key is not base64", line)
		}
		if len(hash) < 32 {
			return nil, fmt.Errorf("line %d: hash key is %d bytes, want at least 32", line, len(hash))
		}
		if len(block) != 32 {
			return nil, fmt.Errorf("line %d: block key is %d bytes, want 32 (AES-256)", line, len(block))
		}
		pairs = append(pairs, KeyPair{Hash: hash, Block: block})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("no key pairs")
	}
	return pairs, nil
}

// GenerateKeys returns the text of a new keys file with one fresh pair.
// To rotate, put a new line first and keep the old one below it until every
// session made with it has expired.
func GenerateKeys() []byte {
	hash := make([]byte, 64)
	block := make([]byte, 32)
	if _, err := rand.Read(hash); err != nil {
		panic(err)
	}
	if _, err := rand.Read(block); err != nil {
		panic(err)
	}
	return []byte("# portcullis session keys: newest first; <hmac-sha256 key> <aes-256 key>\n" +
		base64.StdEncoding.EncodeToString(hash) + " " + base64.StdEncoding.EncodeToString(block) + "\n")
}
