// Package webhook tells the app behind Portcullis what happened: it turns
// the store's event log into the app-facing events (the names and payloads
// of the README's event catalogue), delivers them as Standard Webhooks 1.0
// requests signed with HMAC-SHA256, in event order, at least once, with
// retries, one replica at a time under a lease in the store; and it serves
// the same events as a cursor-paged feed (GET /events on the admin
// listener). It owns no storage of its own: the delivery state is the
// store's (store.Deliveries).
package webhook
