package packmode

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
)

// benchLoop is a loop and the test validator driven by one goroutine,
// round by round, without the Runner: for allocation and speed
// measurements of the loop's own work.
type benchLoop struct {
	v     *testValidator
	l     *Loop
	st    *Stats
	start time.Time
	round int
	// loopTime is the time spent in the loop's calls (not the
	// validator's); loopCPU the thread's CPU time in them (the machine is
	// shared: wall time includes waiting for a core).
	loopTime time.Duration
	loopCPU  time.Duration
	// rows, when set, is the loop's metastore hand-off; step takes its
	// full batches back (the writer's side) into collected.
	rows      *metastore.Handoff
	collected []metastore.Row
}

// threadCPU returns the calling thread's CPU time (getrusage
// RUSAGE_THREAD, 1 on Linux); the caller has locked its OS thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newBenchLoop(tb testing.TB, pol Policy) *benchLoop {
	tb.Helper()
	txs := story(8192, 3)
	socket, v, ready := serveValidator(tb, txs)
	v.checkLocks, v.cycle = false, true
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	logon := testLogon()
	logon.WorkerCount = 8
	s, err := session.Connect(context.Background(), socket, bindings.Profile41, logon, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := <-ready; err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Policy = pol
	cfg.Logger = quiet
	cfg.QueueCapacity = 4096
	if pol == PolicyModel {
		cfg.Model = model.New(model.DefaultParams())
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		tb.Fatal(err)
	}
	st := &Stats{}
	l, err := newLoop(cfg, s, st)
	if err != nil {
		tb.Fatal(err)
	}
	v.newSlot(true)
	l.start = time.Now()
	return &benchLoop{v: v, l: l, st: st, start: l.start}
}

// step feeds k transactions and runs one validator step and one loop pass.
func (b *benchLoop) step(k int) {
	v, l := b.v, b.l
	b.round++
	if b.round%64 == 0 {
		v.newSlot(true)
	}
	v.publishProgress()
	v.feed(k)
	t0, c0 := time.Now(), threadCPU()
	l.now = int64(t0.Sub(b.start))
	l.drainProgress()
	l.drainWorkers()
	l.drainTPU()
	l.expire(64)
	l.schedule()
	b.loopTime += time.Since(t0)
	b.loopCPU += threadCPU() - c0
	if b.rows != nil {
		b.rows.Flush()
		b.collected = b.rows.Collect(b.collected[:0])
	}
	v.work()
	v.audit()
}

// TestLoopSteadyStateAllocs: once warm, a round trip of 64 transactions
// (admission, scheduling, dispatch, results, learning, frees) allocates
// nothing in the loop, for every policy.
func TestLoopSteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		pol  Policy
		rows bool
	}{{PolicyModel, false}, {PolicyFeeOnly, false}, {PolicyFIFO, false}, {PolicyModel, true}} {
		pol := tc.pol
		name := pol.String()
		if tc.rows {
			name += "+rows"
		}
		t.Run(name, func(t *testing.T) {
			b := newBenchLoop(t, pol)
			if tc.rows { // a metastore row per result, handed over without allocating
				b.rows = metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 256, Batches: 4})
				b.l.cfg.Rows = b.rows
				b.collected = make([]metastore.Row, 0, 4*256)
			}
			warm, runs := 2000, 200
			if raceEnabled { // instrumentation allocates: just run the rounds
				warm, runs = 100, 10
			}
			for range warm {
				b.step(64)
			}
			if allocs := testing.AllocsPerRun(runs, func() { b.step(64) }); allocs != 0 && !raceEnabled {
				t.Fatalf("%v allocations per round of 64 transactions", allocs)
			}
			if b.st.Ends[EndIncluded] == 0 || b.st.FreeErrors != 0 || len(b.v.bad) != 0 {
				t.Fatalf("the rounds did no useful work: %+v %v", b.st.Ends, b.v.bad)
			}
			if tc.rows && (b.st.Rows == 0 || b.st.RowsDropped != 0) {
				t.Fatalf("rows: %d handed over, %d dropped", b.st.Rows, b.st.RowsDropped)
			}
		})
	}
}

// BenchmarkLoop measures transactions through the loop on one goroutine:
// ns/op is per transaction for the whole round (validator included);
// loop-ns/tx is the loop's share; tx/s the loop alone could take.
func BenchmarkLoop(b *testing.B) {
	for _, pol := range []Policy{PolicyModel, PolicyFeeOnly, PolicyFIFO} {
		b.Run(pol.String(), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			bl := newBenchLoop(b, pol)
			for range 500 {
				bl.step(64)
			}
			bl.loopTime, bl.loopCPU = 0, 0
			inc0, sch0 := bl.st.Ends[EndIncluded], bl.st.Outcomes[0]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 64 {
				bl.step(64)
			}
			b.StopTimer()
			perTx := float64(bl.loopTime.Nanoseconds()) / float64(b.N)
			cpuTx := float64(bl.loopCPU.Nanoseconds()) / float64(b.N)
			b.ReportMetric(perTx, "loop-ns/tx")
			b.ReportMetric(cpuTx, "loop-cpu-ns/tx")
			b.ReportMetric(1e9/cpuTx, "loop-tx/cpu-s")
			b.ReportMetric(float64(bl.st.Ends[EndIncluded]-inc0)/float64(b.N), "included/tx")
			b.ReportMetric(float64(bl.st.Outcomes[0]-sch0)/float64(b.N), "scheduled/tx")
		})
	}
}

// BenchmarkDispatchLatency50k runs the Runner (its own goroutine, as in
// `qos pack`) against the test validator fed at 50 000 transactions/s
// (50 per millisecond, 8 workers answering every millisecond) for one
// second per op, and reports the p99 and p50 from arrival (read from
// tpu_to_pack) to dispatch (sent to a worker).
func BenchmarkDispatchLatency50k(b *testing.B) {
	var p50, p99, sent, fed float64
	for range b.N {
		txs := story(60000, 4)
		socket, v, ready := serveValidator(b, txs)
		v.checkLocks = false
		cfg := DefaultConfig()
		cfg.Policy = PolicyModel
		cfg.Model = model.New(model.DefaultParams())
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		logon := testLogon()
		logon.WorkerCount = 8
		logon.TpuToPackCapacity = 16384
		r, err := NewRunner(RunConfig{Socket: socket, Profile: bindings.Profile41, Logon: logon, Loop: cfg, Once: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- r.Run(ctx) }()
		if err := <-ready; err != nil {
			b.Fatal(err)
		}
		v.newSlot(true)
		start := time.Now()
		for ms := 1; time.Since(start) < time.Second; {
			if time.Since(start) >= time.Duration(ms)*time.Millisecond {
				ms++
				if ms%400 == 0 {
					v.newSlot(true)
				}
				v.publishProgress()
				v.feed(50)
				v.work()
				v.audit()
			}
			time.Sleep(50 * time.Microsecond)
		}
		st, _ := r.Stats()
		cancel()
		for done := false; !done; {
			select {
			case <-runErr:
				done = true
			default:
				v.publishProgress()
				v.work()
				v.audit()
				time.Sleep(200 * time.Microsecond)
			}
		}
		b.Logf("batches %d txs %d outcomes %v ends %v reasons0 %d 68 %d unproc %d slots %d sendfull %d", st.Batches, st.BatchTxs, st.Outcomes, st.Ends, st.Reasons[0], st.Reasons[68], st.Unprocessed, st.Slots, st.SendFull)
		p50 += float64(st.ToDispatch.Quantile(0.50).Microseconds())
		p99 += float64(st.ToDispatch.Quantile(0.99).Microseconds())
		sent += float64(st.BatchTxs)
		fed += float64(v.next)
	}
	n := float64(b.N)
	b.ReportMetric(p50/n, "p50-µs")
	b.ReportMetric(p99/n, "p99-µs")
	b.ReportMetric(fed/n, "fed/s")
	b.ReportMetric(sent/n, "dispatched/s")
}
