package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/schema"
	"github.com/solqos/qos/schema/schematest"
)

// TestReplaySummary: the summary line names what was replayed, kind by
// kind, and only the kinds present.
func TestReplaySummary(t *testing.T) {
	f := func(k metastore.KindCounts, want string) {
		t.Helper()
		var rep replayReport
		rep.setKinds(&k)
		if got := replaySummary(&rep); got != want {
			t.Errorf("%v: %q, want %q", k, got, want)
		}
		if rep.Rows != k.Total() || rep.Kinds["pack_result"] != k[metastore.RowPackResult] {
			t.Errorf("%v: report rows %d, kinds %v", k, rep.Rows, rep.Kinds)
		}
	}
	f(metastore.KindCounts{}, "no rows")
	f(metastore.KindCounts{metastore.RowCompleted: 12}, "12 completed transactions (sidecar)")
	f(metastore.KindCounts{metastore.RowPackResult: 7, metastore.RowUnparsable: 2},
		"7 execution results (qos pack), 2 penalties (2 unparsable)")
	f(metastore.KindCounts{5, 3, 2, 9}, // all four, in RowKind order
		"5 completed transactions (sidecar), 9 execution results (qos pack), 5 penalties (3 sigverify failed, 2 unparsable)")
}

// packRow is row i of a small pack-mode run: results of qos pack (a
// third refused for the sender's fault, the rest included) and, every
// tenth row, an unparsable transaction charged to its IP.
func packRow(base int64, i uint64) metastore.Row {
	ip := [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: byte(i % 50)}
	if i%10 == 9 {
		return metastore.PenaltyRow(metastore.RowUnparsable, i, base+int64(i)*1000, metastore.PackChannel, ip, 2)
	}
	r := metastore.Row{ObservedAt: base + int64(i)*1000, Seq: i, Seed: 2, Kind: metastore.RowPackResult,
		Channel: metastore.PackChannel, IP: ip, Fee: 5000 + i%7*1000, CUs: 20_000, Slot: 100 + i/64}
	r.Signer[0] = byte(i % 30)
	if i%3 == 0 {
		r.Reason = uint8(bindings.ReasonInsufficientFundsForFee)
	} else {
		r.Scheduled, r.CostUnits, r.ExecNanos = true, 18_000, 18_000
	}
	return r
}

// TestReplayCountsKinds: replay over a database holding sidecar rows and
// qos pack rows says how many of each it read, in the summary line and
// in --json, whether it rebuilds the model or evaluates.
func TestReplayCountsKinds(t *testing.T) {
	db := schematest.New(t, "clikinds")
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	writeReplayRows(t, db, base, 600) // sidecar: completed transactions
	c := db.Connect(t)
	if _, err := schema.Migrate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	h := metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 256, Batches: 8})
	s, err := metastore.NewSink(metastore.SinkConfig{Conn: db.Config(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range uint64(n) {
		r := packRow(base+int64(time.Second), i)
		for !h.Offer(&r) {
			time.Sleep(time.Millisecond)
		}
	}
	if err := s.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
	const unparsable, pack = n / 10, n - n/10
	want := "replayed 1600 rows from"
	kinds := "600 completed transactions (sidecar), 900 execution results (qos pack), 100 penalties (100 unparsable)"
	out := t.TempDir() + "/model.bin"
	code, stdout, stderr := runDBCLI(t, "replay", "--db-url", db.URL, "--out", out)
	if code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, kinds) {
		t.Fatalf("replay: %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("%s", strings.SplitN(stdout, "\n", 2)[0])
	code, stdout, stderr = runDBCLI(t, "replay", "--db-url", db.URL, "--evaluate")
	if code != 0 || !strings.Contains(stdout, want) || !strings.Contains(stdout, kinds) {
		t.Fatalf("replay --evaluate: %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runDBCLI(t, "replay", "--db-url", db.URL, "--out", out, "--json")
	if code != 0 {
		t.Fatalf("replay --json: %q", stderr)
	}
	var rep replayReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	if rep.Rows != 1600 || rep.Completed != 600 || rep.PackResults != pack || rep.Penalties != unparsable ||
		rep.Kinds["completed"] != 600 || rep.Kinds["pack_result"] != pack || rep.Kinds["unparsable"] != unparsable || rep.Kinds["sigverify_failed"] != 0 {
		t.Fatalf("report: %+v", rep)
	}
	// The model learnt every pack result that blames someone: all of
	// them (included or the sender's fault), and the sidecar's rows.
	if rep.Model == nil || rep.Model.Observations != 600+pack || rep.Model.Penalties != unparsable {
		t.Fatalf("model: %+v", rep.Model)
	}
}
