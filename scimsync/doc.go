// Package scimsync owns SCIM 2.0 end to end: handlers, the filter and PATCH
// engines, the Store interface with its SQLite and PostgreSQL
// implementations, and the in-memory directory view.
package scimsync
