package scimsync

// How SCIM compares string attribute values in filters and PATCH paths.

// caseExactAttr reports the string attributes compared exactly (RFC 7643
// §2.2 caseExact); top is the attribute and sub the sub-attribute ("" for
// none), both lowercased. The rest compare ignoring case.
func caseExactAttr(top, sub string) bool {
	switch top {
	case "id", "externalid":
		return sub == ""
	case "meta":
		return sub == "version"
	case "members", "groups":
		// Resource IDs (RFC 7643 §4.1.2, §8.7.1): exact, like id itself.
		return sub == "value"
	}
	return false
}

func dateAttr(top, sub string) bool {
	return top == "meta" && (sub == "created" || sub == "lastmodified")
}

// filterFold says how a filter compares a string attribute (RFC 7643 §2.2
// caseExact): exactly, by match key (the attributes a match key comes
// from, userName and emails, ASCII case only, as the gate compares them
// and as the store's userName index answers), or ignoring case.
func filterFold(top, sub string) fold {
	switch {
	case caseExactAttr(top, sub):
		return foldExact
	case top == "username" && sub == "", top == "emails" && (sub == "value" || sub == ""):
		return foldMatchKey
	}
	return foldCase
}

type fold uint8

const (
	foldCase     fold = iota // Unicode case-insensitive
	foldExact                // caseExact
	foldMatchKey             // identity.MatchKey
)
