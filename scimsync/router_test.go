package scimsync

import (
	"net/http"
	"testing"
)

// Router.Service gives each organization's own Service (the status page
// reads its LastToken), and nothing for one not served.
func TestRouter_ServiceOfEachOrganization(t *testing.T) {
	t.Parallel()
	def, acme := &Service{}, &Service{}
	rt := NewRouter("/scim/v2")
	rt.Set("", def)
	rt.Set("acme", acme)
	rt.Set("plain", http.NotFoundHandler()) // not a Service: none to give
	for org, want := range map[string]*Service{"": def, "default": def, "acme": acme, "globex": nil, "plain": nil} {
		if got := rt.Service(org); got != want {
			t.Errorf("Service(%q) = %p, want %p", org, got, want)
		}
	}
	rt.Set("acme", nil)
	if rt.Service("acme") != nil {
		t.Error("a removed organization still has a Service")
	}
}
