package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-sso/portcullis/config"
	"github.com/portcullis-sso/portcullis/scimsync/store"
)

// The event types the app sees, and the store's kind each comes from.
var typeOfKind = map[string]string{
	store.EventUserCreated:        "user.created",
	store.EventUserUpdated:        "user.updated",
	store.EventUserDeactivated:    "user.deactivated",
	store.EventUserReactivated:    "user.reactivated",
	store.EventUserDeleted:        "user.deleted",
	store.EventGroupCreated:       "group.created",
	store.EventGroupUpdated:       "group.updated",
	store.EventGroupDeleted:       "group.deleted",
	store.EventGroupMemberAdded:   "group.user_added",
	store.EventGroupMemberRemoved: "group.user_removed",
	store.EventSessionCreated:     "session.created",
	store.EventSessionRevoked:     "session.revoked",
}

// Types lists every event type, in the README catalogue's order.
var Types = config.EventTypes

// TypeOf is the app-facing type of a store event kind, "" for none.
func TypeOf(kind string) string { return typeOfKind[kind] }

// KindsOf are the store kinds of the event types types (nil: every kind
// that has a type). An unknown type is an error naming it.
func KindsOf(types []string) ([]string, error) {
	var kinds []string
	for kind, typ := range typeOfKind {
		if types == nil || contains(types, typ) {
			kinds = append(kinds, kind)
		}
	}
	for _, t := range types {
		if !contains(Types, t) {
			return nil, fmt.Errorf("unknown event type %q", t)
		}
	}
	if kinds == nil {
		kinds = []string{}
	}
	return kinds, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// idPrefix starts every event id.
const idPrefix = "evt_"

// EventID is the event id of seq: the same in every webhook attempt and in the feed.
func EventID(seq int64) string { return idPrefix + strconv.FormatInt(seq, 10) }

// ParseEventID is the seq of an event id; "" is 0 (before the first event).
func ParseEventID(id string) (int64, error) {
	if id == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(id, idPrefix)
	seq, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil || seq < 0 || rest != strconv.FormatInt(seq, 10) {
		return 0, fmt.Errorf("%q is not an event id (evt_<number>)", truncate(id, 40))
	}
	return seq, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// message is the body of a webhook; with ID set, an element of the feed.
type message struct {
	ID        string `json:"id,omitempty"`
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	// Organization is the event's organization: named on every event
	// (default included) when organizations are configured, absent
	// without them.
	Organization string `json:"organization,omitempty"`
	Data         any    `json:"data"`
}

// orgOf is e's organization as the body names it: every organization
// when orgs (organizations are configured), else "" for the default one.
func orgOf(e *store.Event, orgs bool) string {
	org := store.OrgOrDefault(e.Org)
	if org == store.DefaultOrg && !orgs {
		return ""
	}
	return org
}

// Timestamp is an event's time as the body and the feed give it: RFC 3339
// in UTC with milliseconds.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// Body is the webhook body of e: {"type", "timestamp", "organization",
// "data"}; orgs says organizations are configured (orgOf).
func Body(e *store.Event, orgs bool) ([]byte, error) {
	return encode(message{Type: TypeOf(e.Kind), Timestamp: Timestamp(e.Time), Organization: orgOf(e, orgs), Data: data(e)})
}

// feedItem is e as an element of the feed: the body plus its id.
func feedItem(e *store.Event, orgs bool) message {
	return message{ID: EventID(e.Seq), Type: TypeOf(e.Kind), Timestamp: Timestamp(e.Time), Organization: orgOf(e, orgs), Data: data(e)}
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

// userData is a user as the app sees it.
type userData struct {
	ID          string          `json:"id"`
	ExternalID  string          `json:"externalId,omitempty"`
	UserName    string          `json:"userName,omitempty"`
	DisplayName string          `json:"displayName,omitempty"`
	Name        json.RawMessage `json:"name,omitempty"`
	Emails      json.RawMessage `json:"emails,omitempty"`
	Email       string          `json:"email,omitempty"` // sessions: the principal's
	Active      *bool           `json:"active,omitempty"`
	// Groups are the user's groups at the time of the event (user events;
	// absent from events stored before they were recorded).
	Groups []groupRef `json:"groups,omitzero"` // omitzero: none is []
}

// groupRef is a group a user is in.
type groupRef struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
}

type groupData struct {
	ID          string `json:"id"`
	ExternalID  string `json:"externalId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

type ref struct {
	ID string `json:"id"`
}

type membersData struct {
	Group ref   `json:"group"`
	Users []ref `json:"users"`
}

type sessionData struct {
	ID      string    `json:"id"`
	Reason  string    `json:"reason,omitempty"`
	User    *userData `json:"user,omitempty"`
	Expires string    `json:"expires,omitempty"`
}

// data is the payload of e: the resource as the app needs it, never a
// password or a token (the store drops write-only attributes on arrival).
func data(e *store.Event) any {
	switch e.Kind {
	case store.EventUserCreated, store.EventUserUpdated, store.EventUserDeactivated, store.EventUserReactivated,
		store.EventUserDeleted: // user.deleted: the user as it was (absent from older events: the id alone)
		if e.User != nil {
			return user(e.User, e.Groups)
		}
	case store.EventGroupCreated, store.EventGroupUpdated:
		if g := e.Group; g != nil {
			return groupData{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.DisplayName}
		}
	case store.EventGroupMemberAdded, store.EventGroupMemberRemoved:
		users := make([]ref, len(e.Members))
		for i, m := range e.Members {
			users[i] = ref{ID: m}
		}
		return membersData{Group: ref{ID: e.ResourceID}, Users: users}
	case store.EventSessionCreated, store.EventSessionRevoked:
		if s := e.Session; s != nil {
			d := sessionData{ID: s.ID, Reason: s.Reason, Expires: Timestamp(s.Expires)}
			if s.UserID != "" || s.User != "" || s.Email != "" { // session.created: who signed in
				d.User = &userData{ID: s.UserID, UserName: s.User, Email: s.Email}
			}
			return d
		}
	}
	return ref{ID: e.ResourceID}
}

// user picks the attributes an app keeps from the stored document: name,
// emails and displayName, beside the indexed fields and the groups.
func user(u *store.User, groups []store.GroupRef) userData {
	active := u.Active
	d := userData{ID: u.ID, ExternalID: u.ExternalID, UserName: u.UserName, Active: &active}
	if groups != nil {
		d.Groups = make([]groupRef, len(groups))
		for i, g := range groups {
			d.Groups[i] = groupRef(g)
		}
	}
	var doc struct {
		DisplayName string          `json:"displayName"`
		Name        json.RawMessage `json:"name"`
		Emails      json.RawMessage `json:"emails"`
	}
	if json.Unmarshal(u.Doc, &doc) == nil {
		d.DisplayName = doc.DisplayName
		d.Name = compactObject(doc.Name, '{')
		d.Emails = compactObject(doc.Emails, '[')
	}
	return d
}

// compactObject is raw compacted if it is a JSON object ('{') or array ('['), else nil.
func compactObject(raw json.RawMessage, open byte) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != open {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return nil
	}
	return b.Bytes()
}
