// Package status owns the admin status page: one server-rendered, read-only
// HTML page on the admin listener that answers "is identity sync working?"
// for a person with a laptop or a phone. It shows sync health (the last
// event of each kind, events per hour, the SCIM error rate, the token in
// use), lets an operator look a user up (state, groups, last login, last
// SCIM change, live sessions), lists this replica's recent audit events,
// and shows the proxy's own health (the /readyz checks, IdP metadata age,
// replica lag).
//
// Numbers come from the Prometheus registry /metrics serves, so the page and
// the metrics always agree; a metric not registered shows as "—". The other
// sources are small interfaces that cmd wires: the store's reader and
// ledger, the SCIM service's token use, the audit ring (AuditRing, tee'd
// into the audit logger) and the readiness checks.
//
// The page has no JavaScript and no state-changing endpoint; search is a
// GET form. Everything it prints is escaped by html/template: user names,
// audit fields and reasons come from outside. Access follows
// config.AdminTokenRequired: open on a loopback admin bind, otherwise the
// admin token (Bearer, or HTTP Basic with the token as password so a
// browser can prompt).
package status
