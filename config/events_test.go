package config

import (
	"strings"
	"testing"
)

func TestEvents_ErrorsNameTheField(t *testing.T) {
	scim := "scim:\n  enabled: true\n  tokensFile: scim.tokens\n"
	for name, tc := range map[string]struct{ yaml, want string }{
		"needs scim": {"events:\n  webhooks:\n    - url: http://127.0.0.1:3000/h\n      secretFile: w.secret\n",
			"events.webhooks: needs scim.enabled"},
		"relative url": {scim + "events:\n  webhooks:\n    - url: /hooks\n      secretFile: w.secret\n",
			"events.webhooks[0].url: must be an absolute http or https URL"},
		"no secret": {scim + "events:\n  webhooks:\n    - url: http://127.0.0.1:3000/h\n",
			"events.webhooks[0].secretFile: required"},
		"unknown type": {scim + "events:\n  webhooks:\n    - url: http://127.0.0.1:3000/h\n      secretFile: w.secret\n      types: [user.created, group.member_added]\n",
			`events.webhooks[0].types[1]: unknown event type "group.member_added"`},
		"duplicate": {scim + "events:\n  webhooks:\n    - {url: 'http://a/h', secretFile: a}\n    - {url: 'http://a/h', secretFile: b}\n",
			"events.webhooks[1].url: the same URL as an earlier webhook"},
		"short retention": {"events:\n  retention: 10m\n", "events.retention: must be at least 1h0m0s"},
		"max age past retention": {"events:\n  retention: 24h\n  webhookMaxAge: 48h\n",
			"events.webhookMaxAge: must be between 1m and events.retention"},
	} {
		_, err := Parse([]byte(minimal+tc.yaml), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", name, err, tc.want)
		}
	}
	c, err := Parse([]byte(minimal+scim+"events:\n  webhooks:\n    - url: http://127.0.0.1:3000/h?k=1\n      secretFile: w.secret\n      types: [user.deactivated]\n"), "/etc/p")
	if err != nil {
		t.Fatal(err)
	}
	if fs := c.SecretFiles(); fs[len(fs)-1] != (SecretFile{Field: "events.webhooks[0].secretFile", Path: "/etc/p/w.secret"}) {
		t.Errorf("secret files = %v, want the webhook secret last", fs)
	}
}
