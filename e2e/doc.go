// Package e2e holds the end-to-end tests: the qos daemon and qos-cli's
// simulated validator built from this tree and run as separate processes
// on shared-memory channels, the way an operator runs them.
package e2e
