//go:build race

package packmode

// raceEnabled: the race detector slows the loop about tenfold and its
// instrumentation allocates; long tests scale down under it (scripts/test
// also runs the Alloc tests without it).
const raceEnabled = true
