package main

import (
	"io"
	"strings"
	"testing"
)

// TestPackFlagErrors: qos pack refuses bad settings with a message naming
// the flag, before logging on.
func TestPackFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"qos", "pack"}, "--ledger"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--bindings-socket", "/tmp/y"}, "not both"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--agave-abi", "3.1"}, "--agave-abi"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--workers", "0"}, "--workers"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--workers", "65"}, "--workers"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--policy", "best"}, "--policy"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--unknown-prior", "2"}, "model flags"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--log-format", "xml"}, "--log-format"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--stats-interval", "0s"}, "--stats-interval"},
		{[]string{"qos", "pack", "--ledger", "/tmp/x", "--leader-end-cutoff", "0"}, "--leader-end-cutoff"},
	} {
		a := app()
		a.Writer, a.ErrWriter = io.Discard, io.Discard
		err := a.Run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}
