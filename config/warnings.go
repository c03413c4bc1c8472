package config

import "fmt"

// Warnings lists valid but risky settings, one line each in the Problem
// format ("line 4: publicURL: ..."), ordered by line. Call it on a validated
// Config (Load does validate); cmd logs each at start and check-config
// prints them.
func (c *Config) Warnings() []string {
	var ps problems
	add := func(path, format string, args ...any) {
		ps.add(path, c.Line(path), format, args...)
	}
	if c.Public != nil && c.Public.Scheme == "http" {
		add("publicURL", "is http, so the session cookie is sent without the Secure flag and can be read on the network; use https outside local development")
	}
	if !c.AdminLoopback() && c.AdminTokenFile == "" {
		add("adminListen", "%s is not loopback and adminTokenFile is not set, so the status page answers 403; set adminTokenFile to use it", c.AdminListen)
	}
	if c.ForwardAuth.Enabled && len(c.Trusted) == 0 {
		add("forwardAuth.enabled", "with no trustedProxies every caller of /.portcullis/auth is judged as a request for that path itself; list the ingress's addresses in trustedProxies")
	}
	if c.UpstreamTLS.InsecureSkipVerify {
		add("upstreamTLS.insecureSkipVerify", "accepts any certificate from the upstream, so anyone on the path to it can read and change every request, identity headers included; give upstreamTLS.caFile instead")
	}
	if c.SAML.AllowIDPInitiated {
		add("saml.allowIDPInitiated", "accepts unsolicited IdP responses, which allows login CSRF; enable it only if your IdP cannot start logins from the SP")
	}
	if c.SAML.NameIDFormat == "transient" && c.SAML.Attributes.User == "" {
		add("saml.nameIDFormat", "transient NameIDs change at every login, so the user identity will too; set saml.attributes.user to a stable attribute")
	}
	for i, p := range c.Trusted {
		if p.Bits() == 0 {
			add(fmt.Sprintf("trustedProxies[%d]", i), "%s trusts every peer, so any client can set X-Forwarded-For and spoof its address", p)
		}
	}
	for i, r := range c.Routes {
		if r.Public && r.Path == "/" {
			add(fmt.Sprintf("routes[%d].public", i), "path \"/\" is public, so no request after this route needs a login")
		}
	}
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps.sorted() {
		out[i] = p.String()
	}
	return out
}
