//go:build race

package sidecar

// raceEnabled: the race detector slows the loop about tenfold; long tests
// scale down under it (scripts/test also runs them without it).
const raceEnabled = true
