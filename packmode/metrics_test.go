package packmode

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/model"
)

// scrape is one Gather of a registry, by family name.
type scrape map[string]*dto.MetricFamily

func gather(t *testing.T, reg *prometheus.Registry) scrape {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	s := scrape{}
	for _, f := range fams {
		s[f.GetName()] = f
	}
	return s
}

// value sums the series of name whose labels include kv (pairs); for a
// histogram it is the sample count. ok is false when no series matches.
func (s scrape) value(name string, kv ...string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(kv); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == kv[i] && lp.GetValue() == kv[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		ok = true
		switch {
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			v += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.GetSummary() != nil:
			v += float64(m.GetSummary().GetSampleCount())
		}
	}
	return v, ok
}

func (s scrape) must(t *testing.T, name string, kv ...string) float64 {
	t.Helper()
	v, ok := s.value(name, kv...)
	if !ok {
		t.Fatalf("no series %s%v", name, kv)
	}
	return v
}

// TestCollectorInLoop runs the loop against the test validator under the
// model policy with the collector on a pedantic registry, and scrapes it
// twice while traffic flows and once after the session: every family the
// dashboard and qos-cli top read is there, the counters move between
// scrapes, and the figures agree with each other and with the loop's own
// accounting — the model's tables fill, sender-caused results are
// labelled so, every worker was busy part of the time and never longer
// than the run, leader slots and their block cost were metered, the
// dispatch histogram holds one value per dispatched transaction, and no
// block leaked at any scrape.
func TestCollectorInLoop(t *testing.T) {
	txs := story(6000, 5)
	socket, v, ready := serveValidator(t, txs)
	cfg := DefaultConfig()
	cfg.Policy = PolicyModel
	cfg.QueueCapacity = 1024
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	mp := model.DefaultParams()
	mp.MinObservations = 1
	cfg.Model = model.New(mp)
	r, err := NewRunner(RunConfig{Socket: socket, Profile: bindings.Profile41, Logon: testLogon(), Loop: cfg, Once: true,
		StatsInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(r))
	if problems, err := testutil.CollectAndLint(NewCollector(r)); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	start := time.Now()
	go func() { runErr <- r.Run(ctx) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	// Slow traffic until a third of the story is in and a stats
	// interval that saw executions has closed since, then a scrape;
	// again for the second third.
	step := 0
	run := func(until int) {
		t.Helper()
		from := time.Now()
		deadline := from.Add(15 * time.Second)
		for {
			step++
			if step%20 == 0 {
				v.newSlot(step%100 != 0)
			}
			v.publishProgress()
			if v.next < until { // no further: the next stage must have traffic of its own
				v.feed(min(5, until-v.next))
			}
			v.work()
			v.audit()
			time.Sleep(200 * time.Microsecond)
			st, _ := r.Stats()
			// (An interval of a non-leader stretch executes nothing.)
			if w := r.Window(); st.Received >= uint64(until) && st.Ends[EndIncluded] > 0 && w.Start.After(from) && w.ToExecution.Count() > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no progress: %d received", st.Received)
			}
		}
	}
	run(len(txs) / 3)
	s1 := gather(t, reg)
	// Moving while traffic flows: each of these between the first two
	// scrapes. The results of executions come back later than the
	// traffic that caused them, by as much as the load delays the
	// loop: keep the validator working on a trickle of traffic and
	// scrape again until they all moved, for at most 15 s.
	moving := [][]string{
		{"qos_pack_received_total"}, {"qos_pack_batches_total"}, {"qos_pack_transactions_total", "end", "included"},
		{"qos_pack_execution_results_total", "blame", "sender"}, {"qos_pack_worker_busy_seconds_total", "worker", "0"},
		{"qos_pack_worker_busy_seconds_total", "worker", "1"}, {"qos_pack_leader_slots_total"},
		{"qos_pack_leader_slot_cost_units_total"}, {"qos_model_observations_total", "result", "paid"},
		{"qos_model_observations_total", "result", "unpaid"}, {"qos_pack_arrival_to_execution_seconds"},
	}
	allMoved := func(s2 scrape) bool {
		for _, c := range moving {
			a, _ := s1.value(c[0], c[1:]...)
			if b, ok := s2.value(c[0], c[1:]...); !ok || !(b > a) {
				return false
			}
		}
		return true
	}
	run(2 * len(txs) / 3)
	s2 := gather(t, reg)
	for deadline := time.Now().Add(15 * time.Second); !allMoved(s2) && time.Now().Before(deadline); {
		// A trickle of traffic, and a scrape once the stats interval
		// saw executions (the interval figures are checked below).
		for from := time.Now(); ; {
			step++
			if step%20 == 0 {
				v.newSlot(step%100 != 0)
			}
			v.publishProgress()
			if v.next < 5*len(txs)/6 {
				v.feed(1)
			}
			v.work()
			v.audit()
			time.Sleep(200 * time.Microsecond)
			if w := r.Window(); w.Start.After(from) && w.ToExecution.Count() > 0 || time.Now().After(deadline) {
				break
			}
		}
		s2 = gather(t, reg)
	}
	st := driveValidator(t, v, r, cancel, runErr)
	elapsed := time.Since(start).Seconds()
	checkAccounting(t, v, st)
	s3 := gather(t, reg)

	for _, name := range []string{
		"qos_pack_transactions_total", "qos_pack_execution_results_total", "qos_pack_schedule_outcomes_total",
		"qos_pack_worker_batches_total", "qos_pack_worker_busy_seconds_total", "qos_pack_received_total",
		"qos_pack_admitted_total", "qos_pack_votes_total", "qos_pack_votes_landed_total", "qos_pack_batches_total",
		"qos_pack_model_observations_total", "qos_pack_leader_slots_total", "qos_pack_leader_slot_cost_units_total",
		"qos_pack_locks_held", "qos_pack_slot_cost_in_flight", "qos_pack_slot_cost_used", "qos_pack_slot_cost_limit",
		"qos_pack_leaked_blocks", "qos_pack_own_blocks_live", "qos_pack_arrival_to_dispatch_seconds",
		"qos_pack_arrival_to_execution_seconds", "qos_pack_arrival_to_dispatch_interval_seconds",
		"qos_pack_arrival_to_execution_interval_seconds", "qos_pack_stats_interval_seconds",
		"qos_model_entries", "qos_model_evicted_total", "qos_model_newcomer_factor", "qos_model_inclusion_bar", "qos_model_observations_total",
		"qos_model_penalties_total", "qos_pack_metastore_rows_total", "qos_pack_session_up",
	} {
		if s1[name] == nil || s2[name] == nil || s3[name] == nil {
			t.Errorf("%s missing from a scrape", name)
		}
	}
	for _, c := range moving {
		a, _ := s1.value(c[0], c[1:]...)
		b := s2.must(t, c[0], c[1:]...)
		if !(b > a) {
			t.Errorf("%v did not move between scrapes: %v → %v", c, a, b)
		}
	}
	if s2.must(t, "qos_pack_session_up") != 1 || s3.must(t, "qos_pack_session_up") != 0 {
		t.Errorf("session_up: %v while running, %v after", s2.must(t, "qos_pack_session_up"), s3.must(t, "qos_pack_session_up"))
	}
	for i, s := range []scrape{s1, s2, s3} {
		if l := s.must(t, "qos_pack_leaked_blocks"); l != 0 {
			t.Errorf("scrape %d: leaked_blocks %v", i+1, l)
		}
		if got, want := s.must(t, "qos_pack_arrival_to_dispatch_seconds"), s.must(t, "qos_pack_batch_transactions_total"); got != want {
			t.Errorf("scrape %d: dispatch histogram holds %v values, %v transactions dispatched", i+1, got, want)
		}
	}
	// The final scrape against the loop's own accounting.
	for _, c := range []struct {
		name string
		kv   []string
		want float64
	}{
		{"qos_pack_received_total", nil, float64(st.Received)},
		{"qos_pack_transactions_total", []string{"end", "included"}, float64(st.Ends[EndIncluded])},
		{"qos_pack_model_observations_total", nil, float64(st.Learned)},
		{"qos_model_entries", []string{"table", "ip"}, float64(cfg.Model.Stats().IPs)},
		{"qos_model_entries", []string{"table", "signer"}, float64(cfg.Model.Stats().Signers)},
		{"qos_model_observations_total", nil, float64(cfg.Model.Stats().Observations)},
		{"qos_pack_votes_landed_total", nil, float64(st.VotesLanded)},
	} {
		if got := s3.must(t, c.name, c.kv...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.kv, got, c.want)
		}
	}
	// Sender-caused reasons are the story's unfunded payers: every one
	// was learnt as unpaid.
	sender := s3.must(t, "qos_pack_execution_results_total", "blame", "sender")
	if unfunded := s3.must(t, "qos_pack_execution_results_total", "reason", "insufficient_funds_for_fee", "blame", "sender"); unfunded == 0 || unfunded != sender {
		t.Errorf("sender-blamed results %v, of which insufficient funds %v", sender, unfunded)
	}
	if got := s3.must(t, "qos_model_observations_total", "result", "unpaid"); got != sender {
		t.Errorf("model unpaid observations %v, sender-blamed results %v", got, sender)
	}
	// Utilisation: busy at most the run's length, each worker.
	for _, w := range []string{"0", "1"} {
		if b := s3.must(t, "qos_pack_worker_busy_seconds_total", "worker", w); b <= 0 || b > elapsed {
			t.Errorf("worker %s busy %vs of a %vs run", w, b, elapsed)
		}
	}
	// Leader slots: the test validator's blocks are far from full.
	slots, cost := s3.must(t, "qos_pack_leader_slots_total"), s3.must(t, "qos_pack_leader_slot_cost_units_total")
	if limit := s3.must(t, "qos_pack_slot_cost_limit"); limit != testBlockLimit || cost/slots <= 0 || cost/slots > limit {
		t.Errorf("%v leader slots, %v cost units, limit %v (want the test validator's %d)", slots, cost, limit, testBlockLimit)
	}
	// The interval quantiles are figures once an interval saw values.
	// Their counts are cumulative, as the histograms'.
	f := s2["qos_pack_arrival_to_execution_interval_seconds"]
	if f == nil || len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetSummary().GetQuantile()) != 2 {
		t.Fatalf("interval summary: %v", f)
	}
	for _, q := range f.GetMetric()[0].GetSummary().GetQuantile() {
		if v := q.GetValue(); math.IsNaN(v) || v <= 0 || v > elapsed {
			t.Errorf("interval execution q%v = %v", q.GetQuantile(), v)
		}
	}
	if a, b := s2.must(t, "qos_pack_arrival_to_execution_interval_seconds"), s2.must(t, "qos_pack_arrival_to_execution_seconds"); a != b {
		t.Errorf("interval summary counts %v, histogram %v", a, b)
	}
	if w := s2.must(t, "qos_pack_stats_interval_seconds"); w < 0.05 || w > 1 {
		t.Errorf("stats interval %vs, want about 0.1", w)
	}
	t.Logf("final: %d received, %d included, %v sender-blamed, %v leader slots at %.2f%% fill, busy %.3fs/%.3fs of %.1fs",
		st.Received, st.Ends[EndIncluded], sender, slots, 100*cost/slots/testBlockLimit,
		s3.must(t, "qos_pack_worker_busy_seconds_total", "worker", "0"), s3.must(t, "qos_pack_worker_busy_seconds_total", "worker", "1"), elapsed)
}

// TestSummaryLogged: the runner logs a summary line per stats interval
// with the interval's figures, as sidecar mode does.
func TestSummaryLogged(t *testing.T) {
	txs := story(1500, 9)
	socket, v, ready := serveValidator(t, txs)
	var logs syncBuf
	cfg := DefaultConfig()
	cfg.Policy = PolicyModel
	cfg.Model = model.New(model.DefaultParams())
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r, err := NewRunner(RunConfig{Socket: socket, Profile: bindings.Profile41, Logon: testLogon(), Loop: cfg, Once: true,
		StatsInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	// Slow traffic until an interval has closed, then the rest.
	for deadline := time.Now().Add(10 * time.Second); r.Window().End.IsZero(); {
		v.publishProgress()
		v.feed(2)
		v.work()
		v.audit()
		time.Sleep(200 * time.Microsecond)
		if time.Now().After(deadline) {
			t.Fatal("no stats interval closed")
		}
	}
	st := driveValidator(t, v, r, cancel, runErr)
	var lines []string
	var included int
	for _, l := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(l, `msg="qos pack"`) {
			continue
		}
		lines = append(lines, l)
		for _, f := range strings.Fields(l) {
			if n, ok := strings.CutPrefix(f, "included="); ok {
				var k int
				for _, c := range n {
					k = k*10 + int(c-'0')
				}
				included += k
			}
		}
	}
	if len(lines) < 2 {
		t.Fatalf("%d summary lines:\n%s", len(lines), logs.String())
	}
	for _, key := range []string{"in_tps=", "sender_blamed=", "scheduler_missed=", "worker_busy=", "dispatch_p99=", "exec_p50=", "model_ips=", "leaked=0", "locks="} {
		if !strings.Contains(lines[len(lines)/2], key) {
			t.Errorf("summary lacks %s: %s", key, lines[len(lines)/2])
		}
	}
	// The intervals cover the run: their included counts add up.
	if uint64(included) != st.Ends[EndIncluded] {
		t.Errorf("summaries count %d included, the loop %d", included, st.Ends[EndIncluded])
	}
}
