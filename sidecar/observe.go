package sidecar

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/score"
)

// observe runs beside the loop: it keeps the latest snapshot for Latest and
// the metrics collector, and logs a summary every LogInterval.
func (s *Sidecar) observe(done <-chan struct{}) {
	var (
		last = Stats{At: time.Now().UnixNano()} // summaries cover everything from the start
		tick <-chan time.Time
	)
	if s.cfg.LogInterval > 0 {
		t := time.NewTicker(s.cfg.LogInterval)
		defer t.Stop()
		tick = t.C
	}
	var maxStall, maxLearn int64
	take := func(sn Stats) {
		maxStall = max(maxStall, sn.MaxStallNanos)
		maxLearn = max(maxLearn, sn.MaxLearnNanos)
		s.mu.Lock()
		s.mu.latest = sn
		s.mu.Unlock()
	}
	for {
		select {
		case sn := <-s.pub.snaps:
			take(sn)
		case <-tick:
			cur := s.Latest()
			s.logSummary(&last, &cur, maxStall, maxLearn)
			last = cur
			maxStall, maxLearn = 0, 0
		case <-done:
			select {
			case sn := <-s.pub.snaps:
				take(sn)
			default:
			}
			if tick != nil {
				cur := s.Latest()
				s.logSummary(&last, &cur, maxStall, maxLearn)
			}
			return
		}
	}
}

func (s *Sidecar) logSummary(prev, cur *Stats, maxStall, maxLearn int64) {
	secs := float64(cur.At-prev.At) / 1e9
	if secs <= 0 {
		return
	}
	rate := func(a, b uint64) float64 { return float64(b-a) / secs }
	attrs := []any{
		"in_pps", int64(rate(prev.TotalReceived(), cur.TotalReceived())),
		"out_pps", int64(rate(prev.Counters[Sent], cur.Counters[Sent])),
		"rejected", cur.TotalRejected() - prev.TotalRejected(),
		"busy", fmt.Sprintf("%.1f%%", 100*float64(cur.BusyNanos-prev.BusyNanos)/float64(cur.At-prev.At)),
	}
	for e := admit.Event(0); e < admit.NumEvents; e++ {
		if d := cur.Admission.Events[e] - prev.Admission.Events[e]; d > 0 {
			attrs = append(attrs, e.Name(), d)
		}
	}
	for c := Counter(0); c < numCounters; c++ {
		if d := cur.Counters[c] - prev.Counters[c]; d > 0 {
			attrs = append(attrs, c.Name(), d)
		}
	}
	var skipped uint64
	for i := range cur.Skipped {
		skipped += cur.Skipped[i] - prev.Skipped[i]
	}
	if skipped > 0 {
		attrs = append(attrs, "overrun_skipped", skipped)
	}
	attrs = append(attrs, "queue", cur.QueueLen, "model_ips", cur.ModelIPs, "model_signers", cur.ModelSigners,
		"max_stall", time.Duration(maxStall), "max_learn", time.Duration(maxLearn))
	s.log.Info("qos", attrs...)
	for r := score.Reject(1); int(r) < score.NumRejects; r++ {
		if d := cur.Admission.Rejects[r] - prev.Admission.Rejects[r]; d > 0 {
			s.log.Debug("rejected", "reason", r.String(), "count", d)
		}
	}
}

// Collector exports the latest snapshot to Prometheus. Register it on a
// registry served by the daemon's --metrics-addr.
func (s *Sidecar) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Sidecar }

var (
	descCounter  = prometheus.NewDesc("qos_events_total", "Loop events by kind (see the event label).", []string{"event"}, nil)
	descReceived = prometheus.NewDesc("qos_received_packets_total", "Packets read from a packet channel.", []string{"channel"}, nil)
	descRejected = prometheus.NewDesc("qos_rejected_packets_total", "Packets rejected, by reason.", []string{"reason"}, nil)
	descSkipped  = prometheus.NewDesc("qos_overrun_skipped_total", "Records lost because the loop was overrun, by channel.", []string{"channel"}, nil)
	descAlive    = prometheus.NewDesc("qos_producer_alive", "1 when the channel's producer heartbeat moved at the last check.", []string{"channel"}, nil)
	descJoined   = prometheus.NewDesc("qos_channel_joined", "1 when the channel is joined.", []string{"channel"}, nil)
	descQueue    = prometheus.NewDesc("qos_queue_length", "Packets waiting in the priority queue.", nil, nil)
	descRecent   = prometheus.NewDesc("qos_recent_signatures", "Recently confirmed signatures held.", nil, nil)
	descModel    = prometheus.NewDesc("qos_model_entries", "Entries in the model, by table: ip, prefix24 (IPv4 /24, IPv6 /48), prefix16 (IPv4 /16, IPv6 /32), signer.", []string{"table"}, nil)
	descEvicted  = prometheus.NewDesc("qos_model_evicted_total", "Model entries evicted from a full table (least recently updated first), by table: ip, prefix (both prefix levels), signer.", []string{"table"}, nil)
	descBar      = prometheus.NewDesc("qos_model_inclusion_bar", "Inclusion bar the model has learnt: a low quantile of the fee per CU of paid transactions (lamports per CU; 0 until the first paid outcome). An unpaid transaction that claimed less was outbid and teaches nothing.", nil, nil)
	descNewcomer = prometheus.NewDesc("qos_model_newcomer_factor", "IP factor of a sender in a neighbourhood the model has no record of: what newcomers have paid lately (1 = as claimed).", nil, nil)
	descPending  = prometheus.NewDesc("qos_model_pending_claims", "Packets sent to sigverify whose outcome the model is still waiting for (pending claims).", nil, nil)
	descPendGone = prometheus.NewDesc("qos_model_pending_taken_back_total", "Pending claims taken back without an outcome, by reason: expired (older than --model-pending-ttl), dropped (beyond --model-pending-max).", []string{"reason"}, nil)
	descQueueLow = prometheus.NewDesc("qos_queue_lowest_score", "Lowest score in the priority queue: what a newcomer must beat when it is full (NaN while the queue is empty).", nil, nil)
	descStall    = prometheus.NewDesc("qos_loop_max_stall_seconds", "Longest loop iteration in the last publish interval.", nil, nil)
	descLearn    = prometheus.NewDesc("qos_model_update_max_seconds", "Longest model update in the last publish interval.", nil, nil)
	descFaults   = prometheus.NewDesc("qos_channel_faults_total", "Memory faults on the channel's file, shrunk by another process under the mapping.", []string{"channel"}, nil)
	descFaulted  = prometheus.NewDesc("qos_channel_faulted", "1 while the channel is dropped after a fault, until its file is valid again.", []string{"channel"}, nil)
	descBusy     = prometheus.NewDesc("qos_loop_busy_seconds_total", "Time the loop spent in iterations that handled records; its rate is the share of its core the traffic needs.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCounter, descReceived, descRejected, descSkipped, descAlive, descJoined, descQueue, descQueueLow, descRecent, descModel, descEvicted, descNewcomer, descBar, descPending, descPendGone, descStall, descLearn, descBusy, descFaults, descFaulted} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	sn := c.s.Latest()
	for e := admit.Event(0); e < admit.NumEvents; e++ {
		ch <- prometheus.MustNewConstMetric(descCounter, prometheus.CounterValue, float64(sn.Admission.Events[e]), e.Name())
	}
	for k := Counter(0); k < numCounters; k++ {
		ch <- prometheus.MustNewConstMetric(descCounter, prometheus.CounterValue, float64(sn.Counters[k]), k.Name())
	}
	for i, name := range packetChannels {
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(sn.Received[i]), name)
	}
	for r := score.Reject(1); int(r) < score.NumRejects; r++ {
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(sn.Admission.Rejects[r]), r.String())
	}
	for i, name := range inputNames {
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(sn.Skipped[i]), name)
		ch <- prometheus.MustNewConstMetric(descAlive, prometheus.GaugeValue, b2f(sn.ProducerAlive[i]), name)
		ch <- prometheus.MustNewConstMetric(descJoined, prometheus.GaugeValue, b2f(sn.Joined[i]), name)
	}
	for i, name := range channelNames {
		ch <- prometheus.MustNewConstMetric(descFaults, prometheus.CounterValue, float64(sn.Faults[i]), name)
		ch <- prometheus.MustNewConstMetric(descFaulted, prometheus.GaugeValue, b2f(sn.Faulted[i]), name)
	}
	ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(sn.QueueLen))
	ch <- prometheus.MustNewConstMetric(descRecent, prometheus.GaugeValue, float64(sn.RecentLen))
	ch <- prometheus.MustNewConstMetric(descModel, prometheus.GaugeValue, float64(sn.ModelIPs), "ip")
	ch <- prometheus.MustNewConstMetric(descModel, prometheus.GaugeValue, float64(sn.ModelNearPrefixes), "prefix24")
	ch <- prometheus.MustNewConstMetric(descModel, prometheus.GaugeValue, float64(sn.ModelWidePrefixes), "prefix16")
	ch <- prometheus.MustNewConstMetric(descModel, prometheus.GaugeValue, float64(sn.ModelSigners), "signer")
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(sn.ModelEvictedIPs), "ip")
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(sn.ModelEvictedPrefixes), "prefix")
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(sn.ModelEvictedSigners), "signer")
	ch <- prometheus.MustNewConstMetric(descNewcomer, prometheus.GaugeValue, sn.ModelNewcomer)
	ch <- prometheus.MustNewConstMetric(descBar, prometheus.GaugeValue, sn.ModelBar)
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(sn.ModelPending))
	ch <- prometheus.MustNewConstMetric(descPendGone, prometheus.CounterValue, float64(sn.ModelPendingExpired), "expired")
	ch <- prometheus.MustNewConstMetric(descPendGone, prometheus.CounterValue, float64(sn.ModelPendingDropped), "dropped")
	low := math.NaN() // no queued packet, no bar
	if sn.QueueLen > 0 {
		low = sn.QueueLowest
	}
	ch <- prometheus.MustNewConstMetric(descQueueLow, prometheus.GaugeValue, low)
	ch <- prometheus.MustNewConstMetric(descStall, prometheus.GaugeValue, float64(sn.MaxStallNanos)/1e9)
	ch <- prometheus.MustNewConstMetric(descLearn, prometheus.GaugeValue, float64(sn.MaxLearnNanos)/1e9)
	ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, float64(sn.BusyNanos)/1e9)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// logTotals logs the run's totals once, when the loop has stopped.
func (s *Sidecar) logTotals() {
	t := &s.snap
	attrs := []any{"received", t.TotalReceived(), "rejected", t.TotalRejected()}
	for e := admit.Event(0); e < admit.NumEvents; e++ {
		attrs = append(attrs, e.Name(), t.Admission.Events[e])
	}
	for c := Counter(0); c < numCounters; c++ {
		attrs = append(attrs, c.Name(), t.Counters[c])
	}
	s.log.Info("loop stopped", attrs...)
}
