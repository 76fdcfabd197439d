package packmode

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// Collector exports a Runner's published Stats to Prometheus.
type Collector struct {
	r                                                             *Runner
	ends, rejects, outcomes, reasons, workerBatches               *prometheus.Desc
	received, votes, batches, batchTxs, unprocessed, unknown      *prometheus.Desc
	badResponse, badRegion, freeErrors, allocFailed, sendFull     *prometheus.Desc
	learned, sessions, up, held, locks, inflight, queue, costUsed *prometheus.Desc
	liveOwn, dispatchP99, execP99                                 *prometheus.Desc
	rows                                                          *prometheus.Desc
}

// NewCollector returns a collector of r's counters (qos_pack_*).
func NewCollector(r *Runner) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("qos_pack_"+name, help, labels, nil)
	}
	return &Collector{r: r,
		ends:          d("transactions_total", "transactions by where their payload ended", "end"),
		rejects:       d("rejected_total", "transactions refused at admission by reason", "reason"),
		outcomes:      d("schedule_outcomes_total", "scheduler decisions by outcome", "outcome"),
		reasons:       d("execution_results_total", "execution results by not_included_reason (none = included)", "reason"),
		workerBatches: d("worker_batches_total", "batches sent per worker (utilisation)", "worker"),
		received:      d("received_total", "tpu_to_pack messages read"),
		votes:         d("votes_total", "simple votes received"),
		batches:       d("batches_total", "batches sent"),
		batchTxs:      d("batch_transactions_total", "transactions in batches sent"),
		unprocessed:   d("unprocessed_batches_total", "batches answered INVALID or MAX_WORKING_SLOT_EXCEEDED"),
		unknown:       d("unknown_batch_answers_total", "worker answers naming no batch in flight"),
		badResponse:   d("bad_responses_total", "response arrays outside the mapping or of the wrong length"),
		badRegion:     d("bad_regions_total", "payload regions outside the mapping"),
		freeErrors:    d("free_errors_total", "frees the allocator refused (offsets not live or not ours)"),
		allocFailed:   d("alloc_failures_total", "batch arrays the allocator could not give"),
		sendFull:      d("send_full_total", "batches not sent because pack_to_worker was full"),
		learned:       d("model_observations_total", "execution results the model learnt from"),
		rows:          d("metastore_rows_total", "metastore rows by outcome (offered to the writer, or dropped: no free batch)", "outcome"),
		sessions:      d("sessions_total", "sessions logged on"),
		up:            d("session_up", "1 while logged on to the validator"),
		held:          d("payloads_held", "payloads held now (queued, vote lane, in flight)"),
		locks:         d("locks_held", "accounts locked by batches in flight"),
		inflight:      d("batches_in_flight", "batches sent and not answered"),
		queue:         d("queue_length", "transactions queued"),
		costUsed:      d("slot_cost_in_flight", "block cost units reserved by batches in flight this slot"),
		liveOwn:       d("leaked_blocks", "blocks our allocator slot handed out and has not seen freed (batch and check arrays), as the allocator counts them: minus qos_pack_batches_in_flight, a leak"),
		dispatchP99:   d("arrival_to_dispatch_p99_seconds", "p99 of arrival → sent to a worker (bucket bound)"),
		execP99:       d("arrival_to_execution_p99_seconds", "p99 of arrival → execution result (bucket bound)"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, up := c.r.Stats()
	ctr := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	for i, v := range st.Ends {
		ctr(c.ends, v, EndName(i))
	}
	for i, v := range st.Rejects {
		if v > 0 {
			ctr(c.rejects, v, score.Reject(i).String())
		}
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
		if v > 0 || pack.SchedulerMiss(bindings.NotIncludedReason(i)) {
			name := pack.ReasonName(bindings.NotIncludedReason(i))
			if name == "" {
				name = strconv.Itoa(i)
			}
			ctr(c.reasons, v, name)
		}
	}
	for i, v := range st.WorkerBatches {
		if v > 0 {
			ctr(c.workerBatches, v, strconv.Itoa(i))
		}
	}
	ctr(c.received, st.Received)
	ctr(c.votes, st.Votes)
	ctr(c.batches, st.Batches)
	ctr(c.batchTxs, st.BatchTxs)
	ctr(c.unprocessed, st.Unprocessed)
	ctr(c.unknown, st.UnknownBatch)
	ctr(c.badResponse, st.BadResponse)
	ctr(c.badRegion, st.BadRegion)
	ctr(c.freeErrors, st.FreeErrors)
	ctr(c.allocFailed, st.AllocFailed)
	ctr(c.sendFull, st.SendFull)
	ctr(c.learned, st.Learned)
	ctr(c.rows, st.Rows, "offered")
	ctr(c.rows, st.RowsDropped, "dropped")
	ctr(c.sessions, st.Sessions)
	b := 0.0
	if up {
		b = 1
	}
	g(c.up, b)
	g(c.held, float64(st.Held))
	g(c.locks, float64(st.LocksHeld))
	g(c.inflight, float64(st.InFlight))
	g(c.queue, float64(st.QueueLen))
	g(c.costUsed, float64(st.CostUsed))
	g(c.liveOwn, float64(st.LiveOwnBlocks))
	g(c.dispatchP99, st.ToDispatch.Quantile(0.99).Seconds())
	g(c.execP99, st.ToExecution.Quantile(0.99).Seconds())
}
