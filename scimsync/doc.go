// Package scimsync owns the SCIM 2.0 protocol: the /Users and /Groups
// handlers (one set over an endpoint per resource type), the filter and
// PATCH engines, the in-memory directory view the gate consults, the
// follower that keeps the view in step with a shared store, drift
// detection and the login recorder. It stores through the interfaces and
// types of scimsync/store and never imports a backend: cmd picks one
// (store/sqlite, store/postgres).
package scimsync
