package metastore

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/solqos/qos/model"
)

// trafficRow is row i of a synthetic but model-shaped run: a few hundred
// IPs (some IPv6) and signers, fees spread over orders of magnitude, most
// rows executed, value tied to the source so that the model has something
// to learn. Rows share microseconds in pairs, so order rests on seq too.
func trafficRow(base int64, i uint64) Row {
	h := i*0x9e3779b97f4a7c15 ^ i>>7
	src := h % 300
	var r Row
	r.ObservedAt = base + int64(i/2)*1000
	r.Seq = i
	r.Seed = 7
	r.Channel = uint8(h % 4)
	if src%10 == 0 {
		r.IP = [16]byte{0x20, 0x01, 0x0d, 0xb8, 6: byte(src), 15: byte(h >> 20)} // /64 shared by its hosts
	} else {
		r.IP = [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 168, 14: byte(src >> 8), 15: byte(src)}
	}
	r.Signer[0] = byte(src % 97)
	r.Signer[1] = byte(h >> 40 % 3)
	quality := float64(src%7 + 1)
	r.Fee = 5000 + uint64(quality*float64(h>>33%20000))
	r.CUs = 1000 + h>>17%300_000
	r.CUPrice = r.Fee * 1_000_000 / r.CUs
	if src%5 != 0 || h%3 == 0 {
		r.ExecNanos = 10_000 + h>>29%200_000
		r.Scheduled = true
	}
	r.Score = quality
	r.Hash = h
	return r
}

// mixedRow is trafficRow with every 7th row a penalty instead (alternately
// a failed sigverify and an unparsable packet), as a run with spammers
// writes them: penalty rows carry only time, seq, kind, channel, IP, seed,
// and a failed sigverify the fee and CUs its packet claimed.
func mixedRow(base int64, i uint64) Row {
	r := trafficRow(base, i)
	if i%7 != 3 {
		return r
	}
	if i%14 == 10 {
		return PenaltyRow(RowUnparsable, r.Seq, r.ObservedAt, r.Channel, r.IP, r.Seed)
	}
	fb := PenaltyRow(RowSigverifyFailed, r.Seq, r.ObservedAt, SigverifyChannel, r.IP, r.Seed)
	fb.Fee, fb.CUs = r.Fee, r.CUs
	return fb
}

// writeTraffic writes rows [0, n) of the traffic run at base through a sink.
func writeTraffic(t testing.TB, d *testDB, base int64, n uint64) {
	t.Helper()
	writeRows(t, d, base, n, trafficRow)
}

// writeRows writes rows row(base, i), i in [0, n), through a sink.
func writeRows(t testing.TB, d *testDB, base int64, n uint64, row func(int64, uint64) Row) {
	t.Helper()
	h := NewHandoff(HandoffConfig{BatchRows: 4096, Batches: 64})
	s, err := NewSink(SinkConfig{Conn: d.sinkConfig(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := row(base, i)
		for !h.Offer(&r) {
			time.Sleep(time.Millisecond)
		}
	}
	if err := s.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != n {
		t.Fatalf("wrote %d of %d rows", st.Written, n)
	}
}

// TestReplayDeterminism: the model built by calling Observe on the rows as
// they were produced equals the model replayed from the database.
func TestReplayDeterminism(t *testing.T) {
	d := newTestDB(t, "replay")
	base := time.Date(2024, 7, 1, 23, 59, 59, 0, time.UTC).UnixNano() // crosses midnight
	const n = 50_000
	writeTraffic(t, d, base, n)
	p := model.DefaultParams()
	p.MaxIPs, p.MaxSigners, p.MaxPrefixes = 150, 150, 20 // evictions happen too
	direct := model.New(p)
	for i := range uint64(n) {
		r := trafficRow(base, i)
		direct.Observe(r.Observation())
	}
	var reports []Progress
	replayed, rows, err := Replay(context.Background(), d.conn, ReplayOptions{
		Params: p, PageRows: 3000, Progress: func(pr Progress) { reports = append(reports, pr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Fatalf("replayed %d rows, want %d", rows, n)
	}
	if diff := model.Diff(direct, replayed, 1e-12); diff != nil {
		t.Fatalf("replayed model differs:\n%v", diff)
	}
	if st := replayed.Stats(); st.Observations != n || st.EvictedIPs == 0 {
		t.Fatalf("replay observed %d rows, want %d, evicting IPs (%d)", st.Observations, n, st.EvictedIPs)
	}
	last := reports[len(reports)-1]
	if !last.Done || last.Rows != n || last.Total != n || len(reports) != n/3000+2 {
		t.Fatalf("%d progress reports, last %+v", len(reports), last)
	}
	// The snapshot files are byte-identical too.
	a, _ := direct.AppendBinary(nil)
	b, _ := replayed.AppendBinary(nil)
	if string(a) != string(b) {
		t.Fatal("model files differ")
	}

	// A sub-range replays the rows in it only.
	from := time.Unix(0, base).Add(10 * time.Millisecond)
	to := from.Add(5 * time.Millisecond)
	_, rows, err = Replay(context.Background(), d.conn, ReplayOptions{Params: p, From: from, To: to})
	if err != nil || rows != 10_000 {
		t.Fatalf("sub-range: %d rows (%v), want 10000", rows, err)
	}
}

// TestReplayPenaltyRows: with penalties among the rows, replay applies
// every row in order (Observe or Penalize) and rebuilds the model the rows
// were produced with; evaluation splits and ranks completed rows only.
func TestReplayPenaltyRows(t *testing.T) {
	d := newTestDB(t, "feedback")
	base := time.Date(2024, 7, 2, 12, 0, 0, 0, time.UTC).UnixNano()
	const n = 14_000 // 2000 penalty rows
	writeRows(t, d, base, n, mixedRow)
	p := model.DefaultParams()
	direct, completedOnly := model.New(p), model.New(p)
	var completed int64
	for i := range uint64(n) {
		r := mixedRow(base, i)
		r.Apply(direct)
		if r.Kind == RowCompleted {
			completed++
			completedOnly.Observe(r.Observation())
		}
	}
	replayed, rows, err := Replay(context.Background(), d.conn, ReplayOptions{Params: p, PageRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || completed != 12_000 {
		t.Fatalf("replayed %d rows (%d completed), want %d (12000)", rows, completed, n)
	}
	if diff := model.Diff(direct, replayed, 0); diff != nil {
		t.Fatalf("replayed model differs:\n%v", diff)
	}
	if model.Diff(direct, completedOnly, 1e-12) == nil {
		t.Fatal("penalties changed nothing: the test proves nothing")
	}
	all, comp, err := Count(context.Background(), d.conn, time.Time{}, time.Time{})
	if err != nil || all != n || comp != completed {
		t.Fatalf("Count = %d, %d (%v); want %d, %d", all, comp, err, n, completed)
	}
	for _, frozen := range []bool{false, true} {
		res, err := Backtest(context.Background(), d.conn, BacktestOptions{Grid: []model.Params{p}, Frozen: frozen})
		if err != nil {
			t.Fatal(err)
		}
		if r := res[0]; r.TrainRows != 8_400 || r.TestRows != 3_600 || r.Shares[0].K != 36 {
			t.Fatalf("frozen %v: split %d/%d, k %d; want 8400/3600 completed rows, k 36", frozen, r.TrainRows, r.TestRows, r.Shares[0].K)
		}
		if !frozen && model.Diff(res[0].Model, replayed, 0) != nil {
			t.Fatal("online evaluation's final model differs from a plain replay")
		}
	}
}

func TestBacktest(t *testing.T) {
	d := newTestDB(t, "eval")
	base := time.Now().UnixNano() / 1000 * 1000
	const n = 20_000
	writeTraffic(t, d, base, n)
	grid := []model.Params{model.DefaultParams(), model.DefaultParams()}
	grid[1].Window = 20
	for _, frozen := range []bool{false, true} {
		res, err := Backtest(context.Background(), d.conn, BacktestOptions{Grid: grid, Frozen: frozen})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 {
			t.Fatalf("%d results", len(res))
		}
		for _, r := range res {
			if r.TrainRows != 14_000 || r.TestRows != 6_000 || len(r.Shares) != 4 {
				t.Fatalf("split %d/%d, %d budgets", r.TrainRows, r.TestRows, len(r.Shares))
			}
			prev := 0.0
			for _, b := range r.Shares {
				if b.K != int(math.Ceil(b.Share*6000)) || b.Oracle < b.Model || b.Oracle < b.FeeOnly || b.Oracle < prev {
					t.Fatalf("budget %+v", b)
				}
				prev = b.Oracle
			}
			t.Logf("frozen=%v window=%v merit %.3f: %+v", frozen, r.Params.Window, r.Merit(), r.Shares)
		}
		// The traffic's value follows its source: the model must beat
		// fee/CU alone at some budget.
		better := false
		for _, b := range res[0].Shares {
			better = better || b.Model > b.FeeOnly
		}
		if !better {
			t.Fatalf("model never beats fee-only: %+v", res[0].Shares)
		}
	}
	if !onlineEqualsReplay(t, d) {
		t.Fatal("online evaluation's final model differs from a plain replay")
	}
}

// onlineEqualsReplay checks that an online evaluation ends with the model
// a plain replay builds.
func onlineEqualsReplay(t *testing.T, d *testDB) bool {
	t.Helper()
	p := model.DefaultParams()
	res, err := Backtest(context.Background(), d.conn, BacktestOptions{Grid: []model.Params{p}})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := Replay(context.Background(), d.conn, ReplayOptions{Params: p})
	if err != nil {
		t.Fatal(err)
	}
	return model.Diff(res[0].Model, m, 0) == nil
}

func TestCaptured(t *testing.T) {
	key := []float64{3, 1, 2, 2, 0}
	value := []float64{10, 100, 1, 2, 1000}
	order := make([]int32, len(key))
	got := captured(order, key, value, []int{1, 2, 3, 5})
	// Ranking 0, 2, 3 (tie keeps time order), 1, 4.
	want := []float64{10, 11, 13, 1113}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("captured = %v, want %v", got, want)
		}
	}
}
