package sidecar

import (
	"os"
	"testing"
)

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

// setSenderGate switches the sender gate for one test, which must not run
// in parallel with others.
func setSenderGate(t *testing.T, on bool) {
	t.Helper()
	old := senderGate
	senderGate = on
	t.Cleanup(func() { senderGate = old })
}
