package store

import (
	"reflect"
	"strings"
	"testing"
)

// A user event's groups survive the store's encoding, and the password
// scrub (which decodes and re-encodes a user event) keeps them while it
// drops the password, user.deleted's included.
func TestEventData_GroupsRoundTripAndSurviveThePasswordScrub(t *testing.T) {
	groups := []GroupRef{{ID: "g1", DisplayName: "admins"}, {ID: "g2", DisplayName: "staff"}}
	e := Event{Kind: EventUserDeleted, User: &User{ID: "u1", UserName: "alice",
		Doc: []byte(`{"password":"hunter2","userName":"alice"}`)}, Groups: groups}
	text, err := EncodeEventData(&e)
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := DecodeEventData([]byte(text.(string)), &back); err != nil || !reflect.DeepEqual(back.Groups, groups) {
		t.Fatalf("decoded groups %+v, %v; want %+v", back.Groups, err, groups)
	}
	scrubbed, changed, err := scrubEventRow([]byte(text.(string)))
	if err != nil || !changed {
		t.Fatalf("scrub: changed %v, %v; want the password dropped", changed, err)
	}
	out := scrubbed.(string)
	if strings.Contains(out, "hunter2") {
		t.Errorf("scrubbed event still holds the password: %s", out)
	}
	var after Event
	if err := DecodeEventData([]byte(out), &after); err != nil || !reflect.DeepEqual(after.Groups, groups) || after.User.UserName != "alice" {
		t.Errorf("after the scrub: %+v, %v; want alice with her groups", after, err)
	}
	none := Event{Kind: EventUserCreated, User: &User{ID: "u2", UserName: "bob"}, Groups: []GroupRef{}}
	text, _ = EncodeEventData(&none)
	var noneBack Event
	if err := DecodeEventData([]byte(text.(string)), &noneBack); err != nil || noneBack.Groups == nil || len(noneBack.Groups) != 0 {
		t.Errorf("no groups decoded as %#v, %v; want empty, not nil (recorded: none)", noneBack.Groups, err)
	}
}
