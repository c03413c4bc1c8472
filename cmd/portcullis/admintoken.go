package main

import (
	"fmt"
	"os"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/status"
)

// readAdminToken reads adminTokenFile; nil when none is configured.
func readAdminToken(cfg *config.Config) ([]byte, error) {
	if cfg.AdminTokenFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.Resolve(cfg.AdminTokenFile))
	if err != nil {
		return nil, fmt.Errorf("adminTokenFile: %w", err)
	}
	tok, err := status.ParseToken(b)
	if err != nil {
		return nil, fmt.Errorf("adminTokenFile %s: %w", cfg.AdminTokenFile, err)
	}
	return tok, nil
}

// hostname names this replica on the status page.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}
