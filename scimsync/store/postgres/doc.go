// Package postgres is the directory store on PostgreSQL (pgx), shared by
// many replicas. It holds only what PostgreSQL does its own way: the pool
// and its transactions, the event-append lock that makes seq order commit
// order, the match key claim lock, LISTEN/NOTIFY for followers, the shared
// SAML replay cache, migrations under an advisory lock, and its event
// statistics. The writes and reads themselves are store.SQLStore's.
package postgres
