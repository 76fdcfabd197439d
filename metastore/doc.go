// Package metastore keeps the sidecar's memory of what its model learned
// from — completed transactions and penalties (failed sigverify, unparsable
// packets) — so that replay can rebuild the model exactly: the Row built
// when the scheduler's result joins an admitted packet's partial meta
// (admit.Partial), the non-blocking Handoff from the hot loop to a writer
// goroutine, the Postgres Sink behind it (COPY, spool file, reconnects) and
// the Reader that streams rows back for replay.
//
// Only Handoff runs on the hot loop; it is single-goroutine, preallocated
// and never allocates or blocks. Everything that talks to Postgres
// or the disk runs on the Sink's own goroutine.
//
// The spool file (see spool.go) is a directory of append-only segments:
//
//	segment  = header record*
//	header   = "QOSSPOOL" | version u32 | row size u32            (16 bytes)
//	record   = magic u32 "QSR1" | rows u32 | crc32c u32 | rows × row   (12+n bytes)
//	row      = the fixed little-endian encoding of Row (row.go): 160 bytes
//	           in version 3, 138 in versions 1 and 2
//
// Version 2 stores the row's kind in a byte that version 1 reserved (and
// wrote as zero), so version 1 segments left by an older binary are read as
// completed transactions, which is all they held. Version 3 adds pack
// mode's result (reason, slot, cost units, fee-payer balance) after it;
// versions 1 and 2 are read with those fields zero. An older binary sets
// newer segments aside (*.corrupt) instead of misreading them.
//
// The checksum (Castagnoli) covers the rows field and the row bytes. A torn
// or corrupt record ends the segment: the rest of it is counted and skipped.
package metastore
