// Package schema holds the metastore's schema: versioned migrations embedded
// in the binary and applied idempotently, and the helpers that create and
// drop the daily partitions of the completed-transaction table.
//
// Everything is created in the connection's current schema (the first
// existing entry of search_path), so one database can host several
// instances, or tests, side by side.
package schema
