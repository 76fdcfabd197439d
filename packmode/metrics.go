package packmode

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// Collector exports a Runner's published Stats to Prometheus: the loop's
// counters and gauges (qos_pack_*) and, under the model policy, the
// model's figures under sidecar mode's names (qos_model_*), so one query
// reads either mode.
//
// Latency comes two ways. The histograms qos_pack_arrival_to_dispatch_seconds
// and qos_pack_arrival_to_execution_seconds are cumulative since the start,
// as Prometheus expects: histogram_quantile(0.99, sum by (le)
// (rate(…_bucket[5m]))) gives the p99 of the last 5 minutes. The summaries
// qos_pack_arrival_to_*_interval_seconds carry, as a summary's quantiles,
// the p50 and p99 of the last complete stats interval alone
// (Runner.Window, --stats-interval): the figures the summary log line
// shows and qos-cli top prints. Their _count and _sum are cumulative, as
// the histograms'.
type Collector struct {
	r        *Runner
	counters []scalar
	gauges   []scalar

	ends, rejects, outcomes, reasons, workerBatches, workerBusy, rows       *prometheus.Desc
	dispatch, execution, dispatchWin, executionWin, window                  *prometheus.Desc
	modelEntries, modelEvicted, modelNewcomer, modelBar, modelObs, modelPen *prometheus.Desc
}

// scalar is one unlabelled series and how to read it from Stats.
type scalar struct {
	d *prometheus.Desc
	v func(st *Stats, up bool) float64
}

// NewCollector returns a collector of r's counters (qos_pack_*, and
// qos_model_* under the model policy).
func NewCollector(r *Runner) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("qos_pack_"+name, help, labels, nil)
	}
	u := func(f func(st *Stats) uint64) func(*Stats, bool) float64 {
		return func(st *Stats, _ bool) float64 { return float64(f(st)) }
	}
	i := func(f func(st *Stats) int64) func(*Stats, bool) float64 {
		return func(st *Stats, _ bool) float64 { return float64(f(st)) }
	}
	c := &Collector{r: r,
		ends:          d("transactions_total", "transactions by where their payload ended", "end"),
		rejects:       d("rejected_total", "transactions refused at admission by reason", "reason"),
		outcomes:      d("schedule_outcomes_total", "scheduler decisions by outcome", "outcome"),
		reasons:       d("execution_results_total", "execution and CHECK results by not_included_reason (none = included) and whom the reason blames: credit (included), sender (counted against the fee payer and IP), none (the scheduler or the validator; the model learns nothing); a reason shows once it occurred", "reason", "blame"),
		workerBatches: d("worker_batches_total", "batches sent per worker", "worker"),
		workerBusy:    d("worker_busy_seconds_total", "time each worker had at least one of our batches out (sent, not answered); its rate is the worker's utilisation", "worker"),
		rows:          d("metastore_rows_total", "metastore rows by outcome (offered to the writer, or dropped: no free batch)", "outcome"),
		dispatch:      d("arrival_to_dispatch_seconds", "arrival → sent to a worker, cumulative since the start (histogram_quantile over rate() for recent quantiles)"),
		execution:     d("arrival_to_execution_seconds", "arrival → execution result read, cumulative since the start (histogram_quantile over rate() for recent quantiles)"),
		dispatchWin:   d("arrival_to_dispatch_interval_seconds", "arrival → sent to a worker: quantiles over the last complete stats interval alone (bucket tops, within 19%; NaN when it saw none), count and sum since the start"),
		executionWin:  d("arrival_to_execution_interval_seconds", "arrival → execution result: quantiles over the last complete stats interval alone (bucket tops, within 19%; NaN when it saw none), count and sum since the start"),
		window:        d("stats_interval_seconds", "length of the last complete stats interval, the one the *_interval_seconds quantiles cover (0 before the first ends)"),
		modelEntries: prometheus.NewDesc("qos_model_entries",
			"Entries in the model, by table: ip, prefix24 (IPv4 /24, IPv6 /48), prefix16 (IPv4 /16, IPv6 /32), signer.", []string{"table"}, nil),
		modelEvicted: prometheus.NewDesc("qos_model_evicted_total",
			"Model entries evicted from a full table (least recently updated first), by table: ip, prefix (both prefix levels), signer.", []string{"table"}, nil),
		modelNewcomer: prometheus.NewDesc("qos_model_newcomer_factor",
			"IP factor of a sender in a neighbourhood the model has no record of: what newcomers have paid lately (1 = as claimed).", nil, nil),
		modelBar: prometheus.NewDesc("qos_model_inclusion_bar",
			"Inclusion bar the model has learnt: a low quantile of the fee per CU of paid transactions (lamports per CU; 0 until the first paid outcome). An unpaid transaction that claimed less was outbid and teaches nothing.", nil, nil),
		modelObs: prometheus.NewDesc("qos_model_observations_total",
			"Outcomes the model learnt (over its whole life, a loaded model's included), by result: paid (included) or unpaid (in pack mode: a sender-caused not-included reason).", []string{"result"}, nil),
		modelPen: prometheus.NewDesc("qos_model_penalties_total",
			"Penalties the model took (over its whole life, a loaded model's included): source IPs of unparsable transactions.", nil, nil),
	}
	c.counters = []scalar{
		{d("received_total", "tpu_to_pack messages read"), u(func(st *Stats) uint64 { return st.Received })},
		{d("admitted_total", "transactions that passed admission into the queue, the vote lane or the CHECK lane"), u(func(st *Stats) uint64 { return st.Admitted })},
		{d("requeued_total", "transactions put back into the queue after a retryable result or an unsent batch"), u(func(st *Stats) uint64 { return st.Requeued })},
		{d("votes_total", "simple votes received"), u(func(st *Stats) uint64 { return st.Votes })},
		{d("votes_landed_total", "simple votes included in a block"), u(func(st *Stats) uint64 { return st.VotesLanded })},
		{d("batches_total", "batches sent"), u(func(st *Stats) uint64 { return st.Batches })},
		{d("batch_transactions_total", "transactions in batches sent"), u(func(st *Stats) uint64 { return st.BatchTxs })},
		{d("unprocessed_batches_total", "batches answered INVALID or MAX_WORKING_SLOT_EXCEEDED (scheduler-caused: their transactions are retried)"), u(func(st *Stats) uint64 { return st.Unprocessed })},
		{d("check_batches_total", "CHECK batches sent (--check)"), u(func(st *Stats) uint64 { return st.CheckBatches })},
		{d("check_failed_total", "transactions the CHECK stage ended (their reasons are in execution_results_total)"), u(func(st *Stats) uint64 { return st.CheckFailed })},
		{d("check_skipped_total", "transactions queued unchecked because their CHECK batch could not be sent or was not answered"), u(func(st *Stats) uint64 { return st.CheckSkipped })},
		{d("check_retried_total", "transactions with unresolved lookups sent to CHECK again (never executed unresolved)"), u(func(st *Stats) uint64 { return st.CheckRetried })},
		{d("unknown_batch_answers_total", "worker answers naming no batch in flight"), u(func(st *Stats) uint64 { return st.UnknownBatch })},
		{d("bad_responses_total", "response arrays outside the mapping or of the wrong length"), u(func(st *Stats) uint64 { return st.BadResponse })},
		{d("bad_regions_total", "payload regions outside the mapping"), u(func(st *Stats) uint64 { return st.BadRegion })},
		{d("free_errors_total", "frees the allocator refused (offsets not live or not ours)"), u(func(st *Stats) uint64 { return st.FreeErrors })},
		{d("double_ends_total", "transactions ended twice (a bug; the second free is skipped)"), u(func(st *Stats) uint64 { return st.DoubleEnd })},
		{d("alloc_failures_total", "batch arrays the allocator could not give"), u(func(st *Stats) uint64 { return st.AllocFailed })},
		{d("send_full_total", "batches not sent because pack_to_worker was full"), u(func(st *Stats) uint64 { return st.SendFull })},
		{d("model_observations_total", "execution and CHECK results the model learnt from (sender-blamed and included ones)"), u(func(st *Stats) uint64 { return st.Learned })},
		{d("parse_penalties_total", "unparsable transactions charged to their source IP"), u(func(st *Stats) uint64 { return st.Penalized })},
		{d("sessions_total", "sessions logged on"), u(func(st *Stats) uint64 { return st.Sessions })},
		{d("progress_messages_total", "progress_tracker messages read"), u(func(st *Stats) uint64 { return st.Progress })},
		{d("slots_total", "slot changes seen in the validator's progress messages"), u(func(st *Stats) uint64 { return st.Slots })},
		{d("leader_slots_total", "leader slots that ended (LEADER_READY in some progress message of the slot)"), u(func(st *Stats) uint64 { return st.LeaderSlots })},
		{d("leader_slot_cost_units_total", "block cost of the leader slots that ended, as the validator's progress messages reported it (block limit − lowest remaining_cost_units); over leader_slots_total and slot_cost_limit, the mean block fill"), u(func(st *Stats) uint64 { return st.LeaderSlotCost })},
	}
	c.gauges = []scalar{
		{d("session_up", "1 while logged on to the validator"), func(_ *Stats, up bool) float64 {
			if up {
				return 1
			}
			return 0
		}},
		{d("payloads_held", "payloads held now (queued, vote lane, CHECK, in flight)"), i(func(st *Stats) int64 { return st.Held })},
		{d("locks_held", "accounts locked by batches in flight"), i(func(st *Stats) int64 { return int64(st.LocksHeld) })},
		{d("batches_in_flight", "batches sent and not answered"), i(func(st *Stats) int64 { return int64(st.InFlight) })},
		{d("queue_length", "transactions queued"), i(func(st *Stats) int64 { return int64(st.QueueLen) })},
		{d("vote_lane_length", "simple votes waiting in the vote lane"), i(func(st *Stats) int64 { return int64(st.VoteLen) })},
		{d("slot_cost_in_flight", "block cost units reserved by batches in flight this slot"), u(func(st *Stats) uint64 { return st.CostUsed })},
		{d("slot_cost_used", "block cost units of the current leader slot as the validator's progress messages report it (block limit − remaining_cost_units; 0 outside leader slots)"), u(func(st *Stats) uint64 { return st.SlotCostUsed })},
		{d("slot_cost_limit", "block cost limit the scheduler keeps to, in cost units (0 before the first session)"), u(func(st *Stats) uint64 { return st.SlotLimit })},
		{d("own_blocks_live", "blocks our allocator slot handed out and has not seen freed (batch and CHECK arrays), as the allocator counts them"), i(func(st *Stats) int64 { return int64(st.LiveOwnBlocks) })},
		{d("leaked_blocks", "own blocks live beyond the batches in flight (own_blocks_live − batches_in_flight): must be 0; above 0 an array was not freed"), i(func(st *Stats) int64 { return int64(st.LeakedBlocks()) })},
	}
	return c
}

// Describe implements prometheus.Collector. Every family is described,
// also those Collect leaves out until they occur (a reason, an outcome)
// or without a model: the registry refuses a series of an undescribed
// family.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.counters {
		ch <- s.d
	}
	for _, s := range c.gauges {
		ch <- s.d
	}
	for _, d := range []*prometheus.Desc{c.ends, c.rejects, c.outcomes, c.reasons, c.workerBatches, c.workerBusy, c.rows,
		c.dispatch, c.execution, c.dispatchWin, c.executionWin, c.window,
		c.modelEntries, c.modelEvicted, c.modelNewcomer, c.modelBar, c.modelObs, c.modelPen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, up := c.r.Stats()
	win := c.r.Window()
	ctr := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	for _, s := range c.counters {
		ch <- prometheus.MustNewConstMetric(s.d, prometheus.CounterValue, s.v(&st, up))
	}
	for _, s := range c.gauges {
		ch <- prometheus.MustNewConstMetric(s.d, prometheus.GaugeValue, s.v(&st, up))
	}
	for i, v := range st.Ends {
		ctr(c.ends, v, EndName(i))
	}
	// Every reason, as sidecar mode's qos_rejected_packets_total.
	for r := score.Reject(1); int(r) < score.NumRejects; r++ {
		ctr(c.rejects, st.Rejects[r], r.String())
	}
	for i, v := range st.Outcomes {
		if v > 0 {
			ctr(c.outcomes, v, pack.Outcome(i).String())
		}
	}
	for i, v := range st.Reasons {
		// The scheduler's own misses are exported from the start, at 0
		// while they do not occur (pack's batches should never meet
		// ACCOUNT_IN_USE).
		if r := bindings.NotIncludedReason(i); v > 0 || pack.SchedulerMiss(r) {
			ctr(c.reasons, v, pack.ReasonName(r), ReasonBlame(r))
		}
	}
	// Every worker of the logon, an idle one too (0: never used).
	for w := range min(int(c.r.rc.Logon.WorkerCount), pack.MaxWorkers) {
		ctr(c.workerBatches, st.WorkerBatches[w], strconv.Itoa(w))
		ch <- prometheus.MustNewConstMetric(c.workerBusy, prometheus.CounterValue, float64(st.WorkerBusy[w])/1e9, strconv.Itoa(w))
	}
	ctr(c.rows, st.Rows, "offered")
	ctr(c.rows, st.RowsDropped, "dropped")
	ch <- prometheus.MustNewConstHistogram(c.dispatch, st.ToDispatch.Count(), st.ToDispatch.Sum().Seconds(), st.ToDispatch.promBuckets())
	ch <- prometheus.MustNewConstHistogram(c.execution, st.ToExecution.Count(), st.ToExecution.Sum().Seconds(), st.ToExecution.promBuckets())
	ch <- prometheus.MustNewConstSummary(c.dispatchWin, st.ToDispatch.Count(), st.ToDispatch.Sum().Seconds(), intervalQuantiles(&win.ToDispatch))
	ch <- prometheus.MustNewConstSummary(c.executionWin, st.ToExecution.Count(), st.ToExecution.Sum().Seconds(), intervalQuantiles(&win.ToExecution))
	ch <- prometheus.MustNewConstMetric(c.window, prometheus.GaugeValue, win.End.Sub(win.Start).Seconds())
	if !st.HasModel {
		return
	}
	m := &st.Model
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	g(c.modelEntries, float64(m.IPs), "ip")
	g(c.modelEntries, float64(m.NearPrefixes), "prefix24")
	g(c.modelEntries, float64(m.WidePrefixes), "prefix16")
	g(c.modelEntries, float64(m.Signers), "signer")
	ctr(c.modelEvicted, m.EvictedIPs, "ip")
	ctr(c.modelEvicted, m.EvictedPrefixes, "prefix")
	ctr(c.modelEvicted, m.EvictedSigners, "signer")
	g(c.modelNewcomer, m.UnknownIP)
	g(c.modelBar, m.Bar)
	ctr(c.modelObs, m.Paid, "paid")
	ctr(c.modelObs, m.Observations-m.Paid, "unpaid")
	ctr(c.modelPen, m.Penalties)
}

// intervalQuantiles are a Window's p50 and p99 in seconds: NaN when the
// interval saw no value (no figure, rather than a latency of 0), as a
// Prometheus summary's empty window.
func intervalQuantiles(h *Hist) map[float64]float64 {
	q := map[float64]float64{0.5: math.NaN(), 0.99: math.NaN()}
	if h.Count() > 0 {
		for k := range q {
			q[k] = h.Quantile(k).Seconds()
		}
	}
	return q
}
