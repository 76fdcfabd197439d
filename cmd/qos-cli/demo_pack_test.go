package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestDemoPackMode: `qos-cli demo --mode pack` runs the stand-in and pack
// mode for the three policies and reports their figures; an unknown mode
// is refused.
func TestDemoPackMode(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		app := &cli.App{Name: "qos-cli", Commands: []*cli.Command{demoCommand()}, Writer: &out, ErrWriter: &errb,
			ExitErrHandler: func(*cli.Context, error) {}}
		err := app.RunContext(context.Background(), append([]string{"qos-cli", "demo"}, args...))
		return out.String(), err
	}
	if _, err := run("--mode", "both"); err == nil {
		t.Error("--mode both accepted")
	}
	out, err := run("--mode", "pack", "--duration", "1500ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rs []packDemoResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rs) != 3 || rs[0].Policy != "model" || rs[1].Policy != "fee-only" || rs[2].Policy != "fifo" {
		t.Fatalf("results %+v", rs)
	}
	for _, r := range rs {
		if r.Included == 0 || r.ValueCaptured == 0 || r.Oracle == 0 || r.VotesFed == 0 || r.Leaks != 0 {
			t.Errorf("%s: %+v", r.Policy, r)
		}
	}
}
