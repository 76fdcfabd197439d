package sidecar

import (
	"github.com/solqos/qos/admit"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// TestCollector: the Prometheus collector exports the latest snapshot
// consistently (a pedantic registry checks descriptions against what is
// collected), with the loop's counters, per-channel receipts and busy time.
func TestCollector(t *testing.T) {
	h := newHarness(t, nil)
	tr := newTraffic(t, 64)
	tr.push(h.tpu, 50)
	h.s.step(0, time.Now().UnixNano())
	h.s.snap.BusyNanos = int64(1500 * time.Millisecond)
	h.s.publish(time.Now().UnixNano()) // fills the queue and model figures
	h.s.mu.latest = h.s.snap
	low, ok := h.s.queue.PeekMin()
	if !ok {
		t.Fatal("nothing queued: the test traffic is wrong")
	}
	ms := h.s.model.Stats()

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		t.Helper()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if matches(m, labels) {
					if c := m.GetCounter(); c != nil {
						return c.GetValue(), true
					}
					return m.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"qos_received_packets_total", map[string]string{"channel": "tpu_to_qos"}, 50},
		{"qos_events_total", map[string]string{"event": "admitted"}, float64(h.s.snap.Admission.Events[admit.EventAdmitted])},
		{"qos_events_total", map[string]string{"event": "sent"}, float64(h.s.snap.Counters[Sent])},
		{"qos_loop_busy_seconds_total", nil, 1.5},
		{"qos_queue_length", nil, float64(h.s.queue.Len())},
		{"qos_queue_lowest_score", nil, low.Score},
		{"qos_model_entries", map[string]string{"table": "ip"}, float64(ms.IPs)},
		{"qos_model_entries", map[string]string{"table": "prefix24"}, float64(ms.NearPrefixes)},
		{"qos_model_entries", map[string]string{"table": "prefix16"}, float64(ms.WidePrefixes)},
		{"qos_model_entries", map[string]string{"table": "signer"}, float64(ms.Signers)},
		{"qos_model_evicted_total", map[string]string{"table": "ip"}, float64(ms.EvictedIPs)},
		{"qos_model_newcomer_factor", nil, ms.UnknownIP},
		{"qos_model_inclusion_bar", nil, ms.Bar},
	} {
		got, ok := value(tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if h.s.snap.Admission.Events[admit.EventAdmitted] == 0 {
		t.Fatal("no packet admitted: the test traffic is wrong")
	}
	// Names, units and help follow Prometheus' conventions.
	problems, err := testutil.CollectAndLint(h.s.Collector())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}
