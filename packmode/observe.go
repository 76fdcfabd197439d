package packmode

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// DefaultStatsInterval is the period of the summary log line, and the
// length of the window of the logged and exported interval latencies,
// when RunConfig.StatsInterval is 0.
const DefaultStatsInterval = 10 * time.Second

// Window is one stats interval's latencies: the cumulative histograms of
// Stats at its end minus those at its start. The summary log line and
// the qos_pack_*_interval_seconds gauges read it; the Prometheus
// histograms stay cumulative (histogram_quantile over rate() windows
// them).
type Window struct {
	Start, End  time.Time
	ToDispatch  Hist
	ToExecution Hist
}

// observer holds the last complete Window (under mu).
type observer struct {
	mu  sync.Mutex
	win Window
}

// Window returns the last complete stats interval (zero times before the
// first one ends).
func (r *Runner) Window() Window {
	r.obs.mu.Lock()
	defer r.obs.mu.Unlock()
	return r.obs.win
}

// startObserver starts the goroutine that closes a stats interval every
// StatsInterval: it keeps the interval's latencies for Window and logs a
// summary of what the interval saw, as sidecar mode does. The function
// it returns stops it after a last summary of the partial interval.
func (r *Runner) startObserver() (stop func()) {
	every := r.rc.StatsInterval
	if every <= 0 {
		every = DefaultStatsInterval
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		prev, _ := r.Stats()
		start := time.Now()
		for {
			var last bool
			select {
			case <-t.C:
			case <-done:
				last = true
			}
			cur, up := r.Stats()
			end := time.Now()
			w := Window{Start: start, End: end,
				ToDispatch: cur.ToDispatch.Since(&prev.ToDispatch), ToExecution: cur.ToExecution.Since(&prev.ToExecution)}
			if !last {
				r.obs.mu.Lock()
				r.obs.win = w
				r.obs.mu.Unlock()
			}
			r.cfg.Logger.Info("qos pack", summary(&prev, &cur, &w, up, int(r.rc.Logon.WorkerCount))...)
			logReasons(r.cfg.Logger, &prev, &cur)
			if last {
				return
			}
			prev, start = cur, end
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// SchedulerCaused reports whether a not-included reason is the
// scheduler's doing rather than the sender's or the validator's: the
// accounts were in use, a block, account, vote or account-data cost limit
// would have been passed, or the bank was gone (the batch came too late).
// Batches answered MAX_WORKING_SLOT_EXCEEDED are the other
// scheduler-caused miss (Stats.Unprocessed). qos-cli top and the
// dashboard match the same set by name
// (account_in_use|bank_not_available|would_exceed_.+).
func SchedulerCaused(reason bindings.NotIncludedReason) bool {
	switch reason {
	case bindings.ReasonAccountInUse, bindings.ReasonBankNotAvailable:
		return true
	}
	return strings.HasPrefix(pack.ReasonName(reason), "would_exceed_")
}

// ReasonBlame is the label of whom a not-included reason blames:
// "credit" (included), "sender" (counted against the fee payer and IP)
// or "none" (the scheduler or the validator: the model learns nothing).
func ReasonBlame(reason bindings.NotIncludedReason) string {
	switch pack.Judge(pack.ExecResult{Reason: reason}, 0, 0).Blame {
	case pack.Credit:
		return "credit"
	case pack.BlameSender:
		return "sender"
	}
	return "none"
}

// summary is the attributes of the summary log line of the interval from
// prev to cur: counts of the interval, gauges as of its end, latencies
// of the interval alone (w), worker utilisation over it.
func summary(prev, cur *Stats, w *Window, up bool, workers int) []any {
	secs := w.End.Sub(w.Start).Seconds()
	if secs <= 0 {
		secs = 1
	}
	d := func(a, b uint64) uint64 { return b - a }
	var sender, sched uint64
	for i := range cur.Reasons {
		n := cur.Reasons[i] - prev.Reasons[i]
		if n == 0 {
			continue
		}
		switch r := bindings.NotIncludedReason(i); {
		case ReasonBlame(r) == "sender":
			sender += n
		case SchedulerCaused(r):
			sched += n
		}
	}
	attrs := []any{
		"up", up,
		"in_tps", int64(float64(d(prev.Received, cur.Received)) / secs),
		"included", d(prev.Ends[EndIncluded], cur.Ends[EndIncluded]),
		"not_included", d(prev.Ends[EndNotIncluded], cur.Ends[EndNotIncluded]),
		"sender_blamed", sender,
		"scheduler_missed", sched,
		"unprocessed_batches", d(prev.Unprocessed, cur.Unprocessed),
	}
	for _, e := range []int{EndExpired, EndEvicted, EndRejected, EndRejectedLow, EndRefused} {
		if n := d(prev.Ends[e], cur.Ends[e]); n > 0 {
			attrs = append(attrs, EndName(e), n)
		}
	}
	attrs = append(attrs, "votes", d(prev.Votes, cur.Votes), "votes_landed", d(prev.VotesLanded, cur.VotesLanded),
		"batches", d(prev.Batches, cur.Batches))
	workers = min(max(workers, 1), pack.MaxWorkers)
	var busy, busiest int64
	for i := range workers {
		b := cur.WorkerBusy[i] - prev.WorkerBusy[i]
		busy += b
		busiest = max(busiest, b)
	}
	ns := secs * 1e9
	attrs = append(attrs, "worker_busy", pct(float64(busy)/float64(workers)/ns), "worker_busy_max", pct(float64(busiest)/ns))
	if slots := d(prev.LeaderSlots, cur.LeaderSlots); slots > 0 && cur.SlotLimit > 0 {
		fill := float64(d(prev.LeaderSlotCost, cur.LeaderSlotCost)) / float64(slots) / float64(cur.SlotLimit)
		attrs = append(attrs, "leader_slots", slots, "block_fill", pct(fill))
	}
	attrs = append(attrs, "queue", cur.QueueLen, "held", cur.Held, "locks", cur.LocksHeld, "leaked", cur.LeakedBlocks(),
		"dispatch_p50", round3(w.ToDispatch.Quantile(0.5)), "dispatch_p99", round3(w.ToDispatch.Quantile(0.99)),
		"exec_p50", round3(w.ToExecution.Quantile(0.5)), "exec_p99", round3(w.ToExecution.Quantile(0.99)))
	if cur.HasModel {
		pm, cm := &prev.Model, &cur.Model
		evicted := cm.EvictedIPs + cm.EvictedPrefixes + cm.EvictedSigners - pm.EvictedIPs - pm.EvictedPrefixes - pm.EvictedSigners
		attrs = append(attrs, "model_ips", cm.IPs, "model_signers", cm.Signers,
			"model_observations", cm.Observations-pm.Observations, "model_evicted", evicted,
			"newcomer_factor", fmt.Sprintf("%.3g", cm.UnknownIP))
	}
	attrs = append(attrs, "parse_penalties", d(prev.Penalized, cur.Penalized),
		"rows", d(prev.Rows, cur.Rows), "rows_dropped", d(prev.RowsDropped, cur.RowsDropped))
	for _, p := range []struct {
		name string
		a, b uint64
	}{
		{"free_errors", prev.FreeErrors, cur.FreeErrors},
		{"bad_responses", prev.BadResponse, cur.BadResponse},
		{"bad_regions", prev.BadRegion, cur.BadRegion},
		{"unknown_batches", prev.UnknownBatch, cur.UnknownBatch},
		{"double_ends", prev.DoubleEnd, cur.DoubleEnd},
		{"alloc_failures", prev.AllocFailed, cur.AllocFailed},
		{"send_full", prev.SendFull, cur.SendFull},
	} {
		if p.b > p.a {
			attrs = append(attrs, p.name, p.b-p.a)
		}
	}
	return attrs
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// round3 rounds d to three significant digits: the quantiles are bucket
// tops (2^k·5/4 − 1 ns and so on), within 19% of the value anyway.
func round3(d time.Duration) time.Duration {
	m := time.Duration(1)
	for d/m >= 1000 {
		m *= 10
	}
	return d.Round(m)
}

// logReasons logs, at debug level, the interval's admission refusals and
// not-included reasons one by one.
func logReasons(log *slog.Logger, prev, cur *Stats) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	for r := score.Reject(1); int(r) < score.NumRejects; r++ {
		if n := cur.Rejects[r] - prev.Rejects[r]; n > 0 {
			log.Debug("rejected", "reason", r.String(), "count", n)
		}
	}
	for i := 1; i < len(cur.Reasons); i++ {
		if n := cur.Reasons[i] - prev.Reasons[i]; n > 0 {
			r := bindings.NotIncludedReason(i)
			log.Debug("not included", "reason", pack.ReasonName(r), "blame", ReasonBlame(r), "count", n)
		}
	}
}
