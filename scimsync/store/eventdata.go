package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// The event log's payload (events.data), as every backend writes it: one
// encoder, one decoder.

// storedEventData is the JSON in events.data. Times are unix milliseconds,
// absent for the zero time. A document that is compact JSON in UTF-8 is
// kept as JSON, so the log reads well in a database shell; any other bytes
// go base64 in docB64 (PostgreSQL's json column holds UTF-8 only), so every
// document comes back byte for byte.
type storedEventData struct {
	User *storedEventResource `json:"user,omitempty"`
	// Groups are a user event's user's groups; a pointer so that none
	// ([]) differs from not recorded (absent).
	Groups  *[]storedGroupRef    `json:"groups,omitempty"`
	Group   *storedEventResource `json:"group,omitempty"`
	Members []string             `json:"members,omitempty"`
	Cutoffs []storedCutoff       `json:"cutoffs,omitempty"`
	Session *storedSession       `json:"session,omitempty"`
}

// storedGroupRef is a GroupRef in a user event.
type storedGroupRef struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
}

// storedSession is the session of a session event: for session.revoked
// what the gate needs (id, org, reason, expires); session.created adds the
// user the app is told about. Times are unix milliseconds.
type storedSession struct {
	ID       string `json:"id"`
	Org      string `json:"org,omitempty"`
	Reason   string `json:"reason"`
	Expires  int64  `json:"expires"`
	UserID   string `json:"userId,omitempty"`
	UserName string `json:"userName,omitempty"`
	Email    string `json:"email,omitempty"`
	Issued   *int64 `json:"issued,omitempty"`
}

// storedCutoff is a KeyCutoff in an event; times are unix milliseconds.
type storedCutoff struct {
	Key         string `json:"key"`
	VoidsBefore int64  `json:"voidsBefore"`
	Expires     int64  `json:"expires"`
	Deleted     bool   `json:"deleted,omitempty"`
}

type storedEventResource struct {
	ID           string          `json:"id"`
	UserName     string          `json:"userName,omitempty"`
	DisplayName  string          `json:"displayName,omitempty"`
	ExternalID   string          `json:"externalId,omitempty"`
	Email        string          `json:"email,omitempty"`
	Active       bool            `json:"active,omitempty"`
	Doc          json.RawMessage `json:"doc,omitempty"`
	DocB64       []byte          `json:"docB64,omitempty"`
	Version      int64           `json:"version"`
	Created      *int64          `json:"created,omitempty"`
	LastModified *int64          `json:"lastModified,omitempty"`
	ValidAfter   *int64          `json:"validAfter,omitempty"`
}

func eventMS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

func eventTime(p *int64) time.Time {
	if p == nil {
		return time.Time{}
	}
	return time.UnixMilli(*p).UTC()
}

func setEventDoc(r *storedEventResource, doc []byte) {
	if len(doc) == 0 {
		return
	}
	// The encoder compacts a RawMessage; keep it only if that changes
	// nothing and the column can hold it.
	var c bytes.Buffer
	if utf8.Valid(doc) && json.Compact(&c, doc) == nil && bytes.Equal(c.Bytes(), doc) {
		r.Doc = doc
	} else {
		r.DocB64 = doc
	}
}

func eventDoc(r *storedEventResource) []byte {
	if len(r.Doc) > 0 {
		return []byte(r.Doc)
	}
	if len(r.DocB64) > 0 {
		return r.DocB64
	}
	return nil
}

// EncodeEventData returns the JSON text of e's payload, or nil if it has
// none. The text is valid UTF-8.
func EncodeEventData(e *Event) (any, error) {
	var d storedEventData
	if u := e.User; u != nil {
		d.User = &storedEventResource{ID: u.ID, UserName: u.UserName, ExternalID: u.ExternalID, Email: u.Email,
			Active: u.Active, Version: u.Version,
			Created: eventMS(u.Created), LastModified: eventMS(u.LastModified), ValidAfter: eventMS(u.ValidAfter)}
		setEventDoc(d.User, u.Doc)
	}
	if e.Groups != nil {
		gs := make([]storedGroupRef, len(e.Groups))
		for i, g := range e.Groups {
			gs[i] = storedGroupRef(g)
		}
		d.Groups = &gs
	}
	if g := e.Group; g != nil {
		d.Group = &storedEventResource{ID: g.ID, DisplayName: g.DisplayName, ExternalID: g.ExternalID, Version: g.Version,
			Created: eventMS(g.Created), LastModified: eventMS(g.LastModified)}
		setEventDoc(d.Group, g.Doc)
	}
	d.Members = e.Members
	for _, c := range e.Cutoffs {
		d.Cutoffs = append(d.Cutoffs, storedCutoff{Key: c.Key, VoidsBefore: c.VoidsBefore.UnixMilli(),
			Expires: c.Expires.UnixMilli(), Deleted: c.Deleted})
	}
	if rs := e.Session; rs != nil {
		d.Session = &storedSession{ID: rs.ID, Org: rs.Org, Reason: rs.Reason, Expires: rs.Expires.UnixMilli(),
			UserID: rs.UserID, UserName: rs.User, Email: rs.Email, Issued: eventMS(rs.Issued)}
	}
	if d.User == nil && d.Groups == nil && d.Group == nil && len(d.Members) == 0 && len(d.Cutoffs) == 0 && d.Session == nil {
		return nil, nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // else <, > and & in a document would change
	if err := enc.Encode(&d); err != nil {
		return nil, err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// DecodeEventData fills e's payload from b, as EncodeEventData (or an
// earlier version of it) wrote it.
func DecodeEventData(b []byte, e *Event) error {
	var d storedEventData
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	if r := d.User; r != nil {
		e.User = &User{ID: r.ID, UserName: r.UserName, ExternalID: r.ExternalID, Email: r.Email, Active: r.Active,
			Doc: eventDoc(r), Version: r.Version,
			Created: eventTime(r.Created), LastModified: eventTime(r.LastModified), ValidAfter: eventTime(r.ValidAfter)}
	}
	if d.Groups != nil {
		e.Groups = make([]GroupRef, len(*d.Groups))
		for i, g := range *d.Groups {
			e.Groups[i] = GroupRef(g)
		}
	}
	if r := d.Group; r != nil {
		e.Group = &Group{ID: r.ID, DisplayName: r.DisplayName, ExternalID: r.ExternalID, Doc: eventDoc(r),
			Version: r.Version, Created: eventTime(r.Created), LastModified: eventTime(r.LastModified)}
	}
	e.Members = d.Members
	for _, c := range d.Cutoffs {
		e.Cutoffs = append(e.Cutoffs, KeyCutoff{Key: c.Key, VoidsBefore: time.UnixMilli(c.VoidsBefore).UTC(),
			Expires: time.UnixMilli(c.Expires).UTC(), Deleted: c.Deleted})
	}
	if rs := d.Session; rs != nil {
		e.Session = &RevokedSession{ID: rs.ID, Org: rs.Org, Reason: rs.Reason, Expires: time.UnixMilli(rs.Expires).UTC(),
			UserID: rs.UserID, User: rs.UserName, Email: rs.Email, Issued: eventTime(rs.Issued)}
	}
	return nil
}
