package config

// The event feed and the webhooks that tell the app what happened.

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Event defaults.
const (
	DefaultEventRetention = 720 * time.Hour
	DefaultWebhookMaxAge  = 72 * time.Hour
	// MinEventRetention keeps events long enough for every replica's
	// follower to read them.
	MinEventRetention = time.Hour
)

// EventTypes are the event types an app sees, in the README catalogue's
// order: events.webhooks[].types and the feed's types name them.
var EventTypes = []string{"user.created", "user.updated", "user.deactivated", "user.reactivated", "user.deleted",
	"group.created", "group.updated", "group.deleted", "group.user_added", "group.user_removed",
	"session.created", "session.revoked"}

// Events configures the event feed (GET /events on the admin listener) and
// the webhooks. Both need the store, so SCIM.
type Events struct {
	// Retention is how long events stay readable in the feed (and stored).
	Retention time.Duration `yaml:"retention"`
	// WebhookMaxAge: an event still failing once this old is given up on.
	WebhookMaxAge time.Duration `yaml:"webhookMaxAge"`
	Webhooks      []Webhook     `yaml:"webhooks"`
}

// Webhook is one endpoint the events are delivered to.
type Webhook struct {
	URL string `yaml:"url"`
	// SecretFile holds whsec_<base64> secrets, one a line; two lines = rotation.
	SecretFile string `yaml:"secretFile"`
	// Types filters the events sent; empty: every type.
	Types []string `yaml:"types"`
}

func (c *Config) eventsDefaults(explicit map[string]bool) {
	if !explicit["events.retention"] {
		c.Events.Retention = DefaultEventRetention
	}
	if !explicit["events.webhookMaxAge"] {
		c.Events.WebhookMaxAge = DefaultWebhookMaxAge
	}
}

func (v *validator) events() {
	ev := v.c.Events
	if ev.Retention < MinEventRetention {
		v.add("events.retention", "must be at least %s; got %s", MinEventRetention, ev.Retention)
	}
	if ev.WebhookMaxAge < time.Minute || ev.WebhookMaxAge > ev.Retention {
		v.add("events.webhookMaxAge", "must be between 1m and events.retention (%s); got %s", ev.Retention, ev.WebhookMaxAge)
	}
	if len(ev.Webhooks) > 0 && !v.c.SCIM.Enabled {
		v.add("events.webhooks", "needs scim.enabled: the events come from the SCIM store")
	}
	seen := map[string]bool{}
	for i, w := range ev.Webhooks {
		p := fmt.Sprintf("events.webhooks[%d]", i)
		v.webhookURL(p+".url", w.URL)
		if seen[w.URL] {
			v.add(p+".url", "the same URL as an earlier webhook")
		}
		seen[w.URL] = true
		if w.SecretFile == "" {
			v.add(p+".secretFile", "required: a file holding whsec_<base64> secrets, one a line")
		}
		for j, t := range w.Types {
			if !slices.Contains(EventTypes, t) {
				v.add(fmt.Sprintf("%s.types[%d]", p, j), "unknown event type %q; one of %v", truncate(t, 40), EventTypes)
			}
		}
	}
}

// webhookURL accepts an absolute http or https URL without a fragment.
func (v *validator) webhookURL(path, s string) {
	u, err := url.Parse(s)
	switch {
	case s == "":
		v.add(path, "required: the URL events are POSTed to")
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		v.add(path, "must be an absolute http or https URL")
	case u.Fragment != "":
		v.add(path, "must not have a fragment")
	}
}
