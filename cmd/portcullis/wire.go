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
	"github.com/portcullis-sso/portcullis/scimsync"
)

// app is everything one process serves.
type app struct {
	cfg   *config.Config
	sp    *samlsp.SP
	proxy *proxy.Proxy
	admin http.Handler
	store io.Closer // nil without SCIM
}

// Close releases what build opened.
func (a *app) Close() error {
	if a.store != nil {
		return a.store.Close()
	}
	return nil
}

// build loads the config and every file it names and builds all handlers,
// without listening or fetching anything over the network.
func build(ctx context.Context, path string, log *zap.Logger) (*app, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return buildFrom(ctx, cfg, log)
}

// buildFrom wires a loaded config.
func buildFrom(ctx context.Context, cfg *config.Config, log *zap.Logger) (*app, error) {
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
	opts := proxy.Options{
		Config:            cfg,
		Auth:              sp,
		Sessions:          codec,
		OwnCookiePrefixes: []string{samlsp.TrackingCookiePrefix(cfg.Session.CookieName)},
		Logger:            log.Named("proxy"),
		Access:            log.Named("access"),
		Audit:             audit,
	}
	a := &app{cfg: cfg, sp: sp}
	var dir *scimsync.Directory
	if cfg.SCIM.Enabled {
		d, svc, st, err := buildSCIM(ctx, cfg, log, audit)
		if err != nil {
			return nil, err
		}
		dir, a.store = d, st
		opts.Gate, opts.SCIM = d, svc
	}
	px, err := proxy.New(opts)
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	if dir != nil {
		dir.OnRevoke(px.CloseStreams)
	}
	a.proxy, a.admin = px, proxy.AdminHandler(sp)
	return a, nil
}

// buildSCIM opens the store, loads the directory view and builds the SCIM API.
func buildSCIM(ctx context.Context, cfg *config.Config, log, audit *zap.Logger) (*scimsync.Directory, http.Handler, io.Closer, error) {
	text, err := os.ReadFile(cfg.Resolve(cfg.SCIM.TokensFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("scim.tokensFile: %w", err)
	}
	tokens, err := scimsync.ParseTokens(text)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("scim.tokensFile %s: %w", cfg.SCIM.TokensFile, err)
	}
	st, err := scimsync.OpenSQLite(ctx, cfg.Resolve(cfg.Store.DSN))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store: %w", err)
	}
	dir, err := scimsync.NewDirectory(cfg.SCIM.Match.SCIMAttribute)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		st.Close()
		return nil, nil, nil, fmt.Errorf("store: load directory: %w", err)
	}
	dir.Load(snap)
	log.Info("directory loaded", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)), zap.Int64("seq", snap.Seq))
	svc, err := scimsync.NewService(scimsync.Options{
		Config:    cfg,
		Store:     st,
		Reader:    st,
		Directory: dir,
		Tokens:    tokens,
		Logger:    log.Named("scimsync"),
		Audit:     audit,
	})
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return dir, svc, st, nil
}

func checkConfig(ctx context.Context, path string, log *zap.Logger, out io.Writer) error {
	a, err := build(ctx, path, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.sp.LoadMetadata(ctx); err != nil {
		return fmt.Errorf("saml: %w", err)
	}
	fmt.Fprintf(out, "config ok: %s\n", path)
	return nil
}

func printMetadata(ctx context.Context, path string, log *zap.Logger, out io.Writer) error {
	a, err := build(ctx, path, log)
	if err != nil {
		return err
	}
	defer a.Close()
	xml, err := a.sp.MetadataXML()
	if err != nil {
		return err
	}
	_, err = out.Write(xml)
	return err
}
