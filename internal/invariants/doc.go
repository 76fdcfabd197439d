// Package invariants is the daemon's one switch for expensive consistency
// checks: Enabled is a constant, true only when built with
// `-tags invariants`, so release builds compile the checks away. Every heap
// and LRU verifies itself behind it; scripts/test runs the tests once with
// the tag.
package invariants
