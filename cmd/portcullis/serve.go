package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/fastpath"
	"github.com/portcullis-sso/portcullis/proxy"
)

func serve(ctx context.Context, path string, log *zap.Logger) error {
	ownGC := tuneGC(log) // before the directory load, whose peak it lowers too
	a, err := build(ctx, path, log)
	if err != nil {
		return err
	}
	if ownGC {
		go adaptGC(ctx)
	}
	defer a.Close()
	return listenAndServe(ctx, a, log)
}

// listenAndServe opens both listeners and serves until ctx ends.
func listenAndServe(ctx context.Context, a *app, log *zap.Logger) error {
	cfg := a.cfg
	pub, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adm, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		pub.Close()
		return fmt.Errorf("adminListen: %w", err)
	}
	return serveOn(ctx, a, pub, adm, log)
}

// serveOn serves the public and admin listeners, loads and refreshes the IdP
// metadata in the background, and shuts down gracefully when ctx ends.
func serveOn(ctx context.Context, a *app, pub, adm net.Listener, log *zap.Logger) error {
	cfg := a.cfg
	errLog := zap.NewStdLog(log.Named("http"))
	servers := []*http.Server{
		newServer(cfg, a.proxy, errLog),
		newServer(cfg, a.admin, errLog),
	}
	var fast *fastpath.Listener
	if cfg.ForwardAuth.Enabled {
		// Forward-auth questions are answered on a loop of their own;
		// everything else on the listener still goes to net/http.
		fast = fastpath.Listen(pub, fastpath.Options{
			Handler:           a.proxy,
			Prefix:            proxy.ForwardAuthPath,
			ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
			IdleTimeout:       cfg.Server.IdleTimeout,
			OnPanic: func(v any) {
				log.Error("panic serving request", zap.Any("panic", v), zap.Stack("stack"))
			},
			OnAnswer:  a.metrics.FastPathAnswer,
			OnHandoff: a.metrics.FastPathHandoff,
			NewServer: func() *http.Server { return newServer(cfg, a.proxy, errLog) },
		})
		pub = fast
	}
	listeners := []net.Listener{pub, adm}

	bg, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	go a.sp.Run(bg) // loads IdP metadata now, then refreshes it
	if a.follower != nil {
		go a.follower.Run(bg) // keeps the directory in step with other replicas
	}
	for _, w := range a.watches {
		go w.Run(bg)
	}
	for _, run := range a.runs {
		go run(bg)
	}
	if len(a.watches) > 0 { // SIGHUP re-reads them at once
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-bg.Done():
					return
				case <-hup:
					for _, w := range a.watches {
						w.Reload()
					}
				}
			}
		}()
	}

	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() {
			if err := s.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	upstream := "none (forward-auth only)"
	if cfg.UpstreamURL != nil {
		upstream = cfg.UpstreamURL.Redacted()
	}
	log.Info("listening",
		zap.String("listen", pub.Addr().String()),
		zap.String("admin_listen", adm.Addr().String()),
		zap.String("public_url", cfg.Public.String()),
		zap.String("upstream", upstream),
		zap.Bool("forward_auth", cfg.ForwardAuth.Enabled))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.Duration("drain_timeout", cfg.Server.DrainTimeout))
	case serveErr = <-errc:
		log.Error("server failed", zap.Error(serveErr))
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				log.Warn("drain timeout reached, closing connections", zap.Error(err))
				_ = s.Close()
			}
		}()
	}
	if fast != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fast.Shutdown(sctx); err != nil {
				log.Warn("drain timeout reached, closing forward-auth connections", zap.Error(err))
			}
		}()
	}
	wg.Wait()
	return serveErr
}

func newServer(cfg *config.Config, h http.Handler, errLog *stdlog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          errLog,
	}
}
