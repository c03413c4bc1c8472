// Package sqlite is the directory store on one local SQLite file
// (modernc.org/sqlite, no cgo), for a single replica. It holds only what
// SQLite does its own way: the connections (one writer, a read pool, WAL
// and synchronous=FULL), its transactions, the write steps whose SQL is
// its own, its migrations with the VACUUM after migration 0004, and its
// event statistics. The writes and reads themselves are store.SQLStore's.
package sqlite
