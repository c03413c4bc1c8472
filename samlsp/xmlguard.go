package samlsp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// The guards here run before crewjam sees a document. crewjam already
// refuses much of this; they are kept regardless so that the refusal does
// not depend on a dependency's internals, and so the audit log gets a
// precise reason.

var (
	errNotUTF8 = errors.New("not UTF-8 text")
	errDoctype = errors.New("has a DOCTYPE or ENTITY declaration")
)

const (
	nsProtocol = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsDSig     = "http://www.w3.org/2000/09/xmldsig#"

	statusSuccess = "urn:oasis:names:tc:SAML:2.0:status:Success"
	// maxXMLDepth bounds element nesting; a real Response is about 8 deep.
	maxXMLDepth = 64
)

// checkXMLText refuses what no SAML message or metadata needs and some
// parsers mishandle: invalid UTF-8, NUL bytes (UTF-16 in disguise) and any
// DTD, in any letter case.
func checkXMLText(data []byte) error {
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return errNotUTF8
	}
	for rest := data; ; {
		i := bytes.Index(rest, []byte("<!"))
		if i < 0 {
			return nil
		}
		rest = rest[i+2:]
		if hasPrefixFold(rest, "DOCTYPE") || hasPrefixFold(rest, "ENTITY") {
			return errDoctype
		}
	}
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// responseInfo is what the ACS reads from a Response before its signature
// is checked. None of it is authenticated: it may only be used to refuse.
type responseInfo struct {
	InResponseTo string
	Destination  string
	IssueInstant time.Time // zero if absent or unreadable (crewjam refuses those)
	Assertions   int       // Assertion and EncryptedAssertion elements anywhere
	Signatures   int       // ds:Signature elements anywhere
	Status       string    // the first StatusCode Value
}

// inspectResponse checks the shape of a decoded SAMLResponse: UTF-8, no
// DTD, well-formed, bounded depth, a single samlp:Response root, and
// exactly one Assertion or EncryptedAssertion element and at least one
// ds:Signature anywhere in it (crewjam decides which signatures count). The
// assertion count refuses the signature-wrapping layouts (a second assertion
// beside, inside Extensions or inside a ds:Object) before any signature
// logic runs; legitimate IdPs send one. It returns the reason code with
// the error.
func inspectResponse(data []byte) (responseInfo, string, error) {
	var info responseInfo
	if err := checkXMLText(data); err != nil {
		if errors.Is(err, errDoctype) {
			return info, reasonDoctype, err
		}
		return info, reasonMalformed, err
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, reasonMalformed, fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return info, reasonDoctype, errDoctype
		case xml.StartElement:
			depth++
			if depth > maxXMLDepth {
				return info, reasonMalformed, fmt.Errorf("xml nested deeper than %d", maxXMLDepth)
			}
			if depth == 1 {
				roots++
				if roots > 1 {
					return info, reasonMalformed, errors.New("more than one root element")
				}
				if err := info.readRoot(t); err != nil {
					return info, reasonMalformed, err
				}
			}
			info.count(t)
		case xml.EndElement:
			depth--
		}
	}
	if roots == 0 {
		return info, reasonMalformed, errors.New("no root element")
	}
	if info.Assertions == 0 && info.Status != statusSuccess {
		// An IdP error (cancelled, NoPassive, …): worth its own reason.
		return info, reasonIDPStatus, fmt.Errorf("idp status %q (unverified)", info.Status)
	}
	if info.Assertions != 1 {
		return info, reasonAssertionCount, fmt.Errorf("response holds %d Assertion or EncryptedAssertion elements, want exactly 1", info.Assertions)
	}
	if info.Signatures == 0 {
		return info, reasonUnsigned, errors.New("response holds no signature")
	}
	return info, "", nil
}

// readRoot takes InResponseTo, Destination and IssueInstant from the root
// element, which must be a samlp:Response.
func (info *responseInfo) readRoot(t xml.StartElement) error {
	if t.Name.Space != nsProtocol || t.Name.Local != "Response" {
		return fmt.Errorf("root element is {%s}%s, not a samlp:Response", t.Name.Space, t.Name.Local)
	}
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "InResponseTo":
			info.InResponseTo = a.Value
		case "Destination":
			info.Destination = a.Value
		case "IssueInstant":
			info.IssueInstant = parseSAMLTime(a.Value)
		}
	}
	return nil
}

// count notes assertions, signatures and the first status code.
func (info *responseInfo) count(t xml.StartElement) {
	switch {
	case t.Name.Local == "Assertion" || t.Name.Local == "EncryptedAssertion":
		info.Assertions++
	case t.Name.Local == "Signature" && t.Name.Space == nsDSig:
		info.Signatures++
	case t.Name.Local == "StatusCode" && t.Name.Space == nsProtocol && info.Status == "":
		for _, a := range t.Attr {
			if a.Name.Space == "" && a.Name.Local == "Value" {
				info.Status = a.Value
			}
		}
	}
}

// parseSAMLTime reads an xs:dateTime as crewjam does, or returns the zero time.
func parseSAMLTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
