// Package sigcache remembers the first signatures of recently confirmed
// transactions (fed by the validator's tx_status_cache channel), so the
// daemon can drop packets carrying a transaction that already landed.
//
// A Set is a fixed-capacity FIFO set (default 2^20 signatures, the
// channel's capacity): a ring of seeded XXH64 keys in insertion order and an
// open-addressing index over them, both pointer-free arrays allocated once.
// Add and Contains take O(1) expected time and never allocate.
package sigcache
