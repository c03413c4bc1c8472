package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/session"
	"github.com/portcullis-sso/portcullis/proxy"
	"github.com/portcullis-sso/portcullis/samlsp"
)

// app is everything one process serves.
type app struct {
	cfg   *config.Config
	sp    *samlsp.SP
	proxy *proxy.Proxy
	admin http.Handler
}

// build loads the config and every file it names and builds all handlers,
// without listening or fetching anything over the network.
func build(path string, log *zap.Logger) (*app, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		log.Warn("risky setting", zap.String("warning", w))
	}
	keyText, err := os.ReadFile(cfg.Resolve(cfg.Session.KeysFile))
	if err != nil {
		return nil, fmt.Errorf("session.keysFile: %w", err)
	}
	keys, err := session.ParseKeys(keyText)
	if err != nil {
		return nil, fmt.Errorf("session.keysFile %s: %w", cfg.Session.KeysFile, err)
	}
	codec, err := session.NewCodec(cfg.Session.CookieName, keys,
		cfg.Public.Scheme == "https", cfg.Session.Lifetime)
	if err != nil {
		return nil, fmt.Errorf("session.keysFile: %w", err)
	}
	audit := log.Named("audit")
	sp, err := samlsp.New(samlsp.Options{
		Config:      cfg,
		Sessions:    codec,
		SessionKeys: keys,
		Logger:      log.Named("samlsp"),
		Audit:       audit,
	})
	if err != nil {
		return nil, err
	}
	px, err := proxy.New(proxy.Options{
		Config:            cfg,
		Auth:              sp,
		Sessions:          codec,
		OwnCookiePrefixes: []string{samlsp.TrackingCookiePrefix(cfg.Session.CookieName)},
		Logger:            log.Named("proxy"),
		Access:            log.Named("access"),
		Audit:             audit,
	})
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, sp: sp, proxy: px, admin: proxy.AdminHandler(sp)}, nil
}

func checkConfig(ctx context.Context, path string, log *zap.Logger, out io.Writer) error {
	a, err := build(path, log)
	if err != nil {
		return err
	}
	if err := a.sp.LoadMetadata(ctx); err != nil {
		return fmt.Errorf("saml: %w", err)
	}
	fmt.Fprintf(out, "config ok: %s\n", path)
	return nil
}

func printMetadata(path string, log *zap.Logger, out io.Writer) error {
	a, err := build(path, log)
	if err != nil {
		return err
	}
	xml, err := a.sp.MetadataXML()
	if err != nil {
		return err
	}
	_, err = out.Write(xml)
	return err
}
