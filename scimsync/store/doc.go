// Package store is the directory's storage layer: the Store and Reader
// interfaces the SCIM protocol code uses, the stored types (User, Group,
// Event, Snapshot, KeyCutoff), the store errors, and the logic every
// database shares — the write operations themselves (Writer: one group
// member diff, one "same user" rule, the match key bookkeeping), the one
// event encoder, the migration loader and the password scrub of migration
// 0004. The login ledger (Ledger) has interfaces and types of its own.
//
// Each database is a package of its own that holds only what differs:
// SQL, transactions, notifications and migrations (store/sqlite,
// store/postgres). A backend never imports another, and nothing here knows
// HTTP or SCIM's wire format; store/storetest is the conformance suite both
// backends run.
package store
