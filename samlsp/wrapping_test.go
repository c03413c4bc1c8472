package samlsp

import (
	"net/http"
	"testing"

	"github.com/beevik/etree"
)

// wrappingCase builds one XML signature wrapping (XSW) attack on a login:
// the IdP signed something for alice, the attacker rearranges it so that
// a naive reader takes mallory's unsigned data instead.
type wrappingCase struct {
	name  string
	build func(h *harness, requestID string) *etree.Element
}

// toMallory rewrites an assertion element's identity in place.
func toMallory(el *etree.Element) *etree.Element {
	for _, e := range el.FindElements("//NameID") {
		e.SetText("mallory@example.com")
	}
	for _, e := range el.FindElements("//AttributeValue") {
		if e.Text() == "alice" {
			e.SetText("mallory")
		}
		if e.Text() == "staff" {
			e.SetText("root")
		}
	}
	return el
}

func childByTag(el *etree.Element, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	return nil
}

var wrappingCases = []wrappingCase{
	{"unsigned assertion before the signed one", func(h *harness, id string) *etree.Element {
		a := h.assertion(id)
		signed := h.idp.signAssertion(h.t, a)
		evil := toMallory(a.Element())
		resp := h.response(id).Element()
		resp.AddChild(evil)
		resp.AddChild(signed)
		return resp
	}},
	{"unsigned assertion after the signed one", func(h *harness, id string) *etree.Element {
		a := h.assertion(id)
		signed := h.idp.signAssertion(h.t, a)
		evil := toMallory(a.Element())
		evil.CreateAttr("ID", randomID())
		resp := h.response(id).Element()
		resp.AddChild(signed)
		resp.AddChild(evil)
		return resp
	}},
	{"signed assertion moved into Extensions, evil one in its place", func(h *harness, id string) *etree.Element {
		a := h.assertion(id)
		signed := h.idp.signAssertion(h.t, a)
		evil := toMallory(signed.Copy())
		if sig := childByTag(evil, "Signature"); sig != nil {
			evil.RemoveChild(sig)
		}
		resp := h.response(id).Element()
		ext := resp.CreateElement("samlp:Extensions")
		ext.AddChild(signed)
		resp.AddChild(evil)
		return resp
	}},
	{"signed assertion inside the evil one's ds:Object", func(h *harness, id string) *etree.Element {
		a := h.assertion(id)
		signed := h.idp.signAssertion(h.t, a)
		evil := toMallory(signed.Copy()) // keeps the original Signature and ID
		sig := childByTag(evil, "Signature")
		obj := sig.CreateElement("ds:Object")
		obj.AddChild(signed)
		resp := h.response(id).Element()
		resp.AddChild(evil)
		return resp
	}},
	{"evil assertion carrying the signed one's Signature", func(h *harness, id string) *etree.Element {
		a := h.assertion(id)
		evil := toMallory(h.idp.signAssertion(h.t, a))
		resp := h.response(id).Element()
		resp.AddChild(evil)
		return resp
	}},
	{"signed response with its assertion swapped", func(h *harness, id string) *etree.Element {
		a := h.assertion(id)
		resp := h.idp.signResponse(h.t, h.response(id), a.Element())
		orig := childByTag(resp, "Assertion")
		resp.RemoveChild(orig)
		evil := toMallory(orig.Copy())
		evil.CreateAttr("ID", randomID())
		resp.AddChild(evil)
		return resp
	}},
	{"signed response wrapped inside an evil response", func(h *harness, id string) *etree.Element {
		r := h.response(id)
		a := h.assertion(id)
		signedResp := h.idp.signResponse(h.t, r, a.Element())
		outer := r.Element() // same ID as the signed one
		ext := outer.CreateElement("samlp:Extensions")
		ext.AddChild(signedResp)
		outer.AddChild(toMallory(a.Element()))
		return outer
	}},
	{"signed response's Signature on an evil response", func(h *harness, id string) *etree.Element {
		r := h.response(id)
		a := h.assertion(id)
		signedResp := h.idp.signResponse(h.t, r, a.Element())
		evil := toMallory(signedResp.Copy())
		return evil
	}},
}

func TestACS_SignatureWrappingRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range wrappingCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			l := h.startLogin("/app")
			doc := tc.build(h, l.requestID)
			raw := elementBytes(t, doc)
			rec := h.postACS(encodeElement(t, doc), l.relay, l.cookie)
			if rec.Code == http.StatusSeeOther {
				t.Fatalf("wrapped response accepted; session %+v", h.session(rec).Principal)
			}
			reason := h.lastReason()
			switch reason {
			case reasonAssertionCount, reasonInvalidSignature:
			default:
				t.Errorf("reason %q, want %s or %s", reason, reasonAssertionCount, reasonInvalidSignature)
			}
			h.expectRefused(t, rec, http.StatusForbidden, reason)

			// Defence in depth: crewjam alone, without our shape guard,
			// refuses it too.
			st := h.sp.defConn().state.Load()
			idp := *st.sp
			if a, err := parseWithCrewjam(&idp, raw, []string{l.requestID}); err == nil {
				t.Errorf("crewjam alone accepted the wrapped response as %+v", a.Subject.NameID)
			}
		})
	}
}

// The guard's verdict on its own, so that a change to the guard that stops
// catching a layout shows up even while crewjam still refuses it.
func TestInspectResponse_WrappingLayouts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	want := map[string]string{
		"unsigned assertion before the signed one":                      reasonAssertionCount,
		"unsigned assertion after the signed one":                       reasonAssertionCount,
		"signed assertion moved into Extensions, evil one in its place": reasonAssertionCount,
		"signed assertion inside the evil one's ds:Object":              reasonAssertionCount,
		"evil assertion carrying the signed one's Signature":            "",
		"signed response with its assertion swapped":                    "",
		"signed response wrapped inside an evil response":               reasonAssertionCount,
		"signed response's Signature on an evil response":               "",
	}
	for _, tc := range wrappingCases {
		_, reason, _ := inspectResponse(elementBytes(t, tc.build(h, "id-1")))
		if reason != want[tc.name] {
			t.Errorf("%s: guard reason %q, want %q", tc.name, reason, want[tc.name])
		}
	}
	_, reason, err := inspectResponse(elementBytes(t, h.buildResponse(respOpts{requestID: "id-1"})))
	if err != nil {
		t.Errorf("valid response: %s %v", reason, err)
	}
}
