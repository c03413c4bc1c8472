package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/internal/identity"
	"github.com/portcullis-sso/portcullis/samlsp"
	"github.com/portcullis-sso/portcullis/scimsync"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// samlEnder adapts scimsync.SessionEnder (the store's sessions) to
// samlsp.SessionEnder (logout and Single Logout).
type samlEnder struct {
	e             *scimsync.SessionEnder
	identityField string
}

func (a samlEnder) EndSessions(ctx context.Context, q samlsp.EndQuery) (int, error) {
	sq := store.SessionQuery{Org: q.Org, IdP: q.IdP, NameID: q.NameID, SessionIndexes: q.SessionIndexes}
	if s := q.Session; s != nil {
		sq.Known = []store.RevokedSession{{ID: s.ID, User: s.Principal.User,
			MatchKey: scimsync.PrincipalMatchKey(s.Principal, a.identityField), Issued: s.IssuedAt, Expires: s.Expires}}
	}
	ended, err := a.e.End(ctx, sq, q.Reason, "saml")
	return len(ended), err
}

const sessionsUsage = `Usage:
  portcullis sessions revoke --user USER --config FILE
      end every live session of USER (the match key the login ledger
      keys sessions by: the email or user, per scim.match.identityField)
      on every replica that shares the store
`

// runSessionsCommand is "portcullis sessions revoke".
func runSessionsCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "revoke" {
		fmt.Fprint(stderr, sessionsUsage)
		return 2
	}
	fs := flag.NewFlagSet("sessions revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file")
	user := fs.String("user", "", "the user whose sessions end")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *configPath == "" || *user == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, sessionsUsage)
		return 2
	}
	log, err := newLogger("json", "info", stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis sessions revoke: %v\n", err)
		return 2
	}
	n, err := revokeUserSessions(context.Background(), *configPath, *user, log.Named("audit"))
	if err != nil {
		fmt.Fprintf(stderr, "portcullis sessions revoke: %s\n", errorText(err))
		return 1
	}
	fmt.Fprintf(stdout, "ended %d session(s) of %s\n", n, *user)
	return 0
}

// revokeUserSessions ends every live session of user in the configured
// store, as the status page's "Sign out everywhere" does.
func revokeUserSessions(ctx context.Context, path, user string, audit *zap.Logger) (int, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return 0, err
	}
	if !cfg.SCIM.Enabled {
		return 0, errors.New("sessions live in the store, which needs scim.enabled: without it a session ends only when it expires or its browser signs out")
	}
	opened, err := storeFor(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("store (%s): %w", cfg.Store.Driver, err)
	}
	defer opened.st.Close()
	ender, err := scimsync.NewSessionEnder(opened.st, nil, audit, nil)
	if err != nil {
		return 0, err
	}
	ended, err := ender.End(ctx, store.SessionQuery{MatchKey: identity.MatchKey(user)}, "admin", "cli")
	return len(ended), err
}
