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
  portcullis sessions revoke --user USER [--organization ID] --config FILE
      end every live session of USER (the match key the login ledger
      keys sessions by: the email or user, per scim.match.identityField)
      in organization ID (default: the default organization) on every
      replica that shares the store
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
	org := fs.String("organization", identity.DefaultOrg, "the organization the user belongs to")
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
	n, err := revokeUserSessions(context.Background(), *configPath, *org, *user, log.Named("audit"))
	if err != nil {
		fmt.Fprintf(stderr, "portcullis sessions revoke: %s\n", errorText(err))
		return 1
	}
	fmt.Fprintf(stdout, "ended %d session(s) of %s in organization %s\n", n, *user, *org)
	return 0
}

// revokeUserSessions ends every live session of user in organization org
// in the configured store, as the status page's "Sign out everywhere"
// does.
func revokeUserSessions(ctx context.Context, path, org, user string, audit *zap.Logger) (int, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return 0, err
	}
	if !cfg.SCIM.Enabled {
		return 0, errors.New("sessions live in the store, which needs scim.enabled: without it a session ends only when it expires or its browser signs out")
	}
	if !configuredOrg(cfg, org) {
		return 0, fmt.Errorf("--organization %s: no such organization in the config (organizations, organizationsDir)", org)
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
	ended, err := ender.End(ctx, store.SessionQuery{Org: org, MatchKey: identity.MatchKey(user)}, "admin", "cli")
	return len(ended), err
}

// configuredOrg reports whether org is an organization cfg serves: the
// default one (with a top-level IdP), one of organizations, or one whose
// organizationsDir file passes its checks.
func configuredOrg(cfg *config.Config, org string) bool {
	if org == identity.DefaultOrg {
		return cfg.HasDefaultOrg()
	}
	for _, o := range cfg.Organizations {
		if o.ID == org {
			return true
		}
	}
	if cfg.OrganizationsDir == "" {
		return false
	}
	files, err := cfg.ReadOrganizationsDir()
	if err != nil {
		return false
	}
	for _, f := range files {
		if f.Err == nil && f.Org.ID == org {
			return true
		}
	}
	return false
}
