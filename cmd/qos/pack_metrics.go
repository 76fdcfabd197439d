package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/solqos/qos/packmode"
)

// packExtraCollector exports the figures of packmode.Stats that
// packmode.Collector does not (yet): what the pack dashboard and qos-cli
// top need to say whether qos helps the validator's blocks — votes that
// landed, the current slot's cost limit (the budget slot_cost_in_flight
// is a share of) and slot changes. They belong beside the others in
// packmode.Collector; a registry refuses a name exported twice, so moving
// them there means deleting them here.
type packExtraCollector struct{ r *packmode.Runner }

var (
	descVotesLanded = prometheus.NewDesc("qos_pack_votes_landed_total", "simple votes included in a block", nil, nil)
	descSlotLimit   = prometheus.NewDesc("qos_pack_slot_cost_limit", "block cost limit of the current slot, in cost units (0 before the first progress message)", nil, nil)
	descSlots       = prometheus.NewDesc("qos_pack_slots_total", "slot changes seen in the validator's progress messages", nil, nil)
	descVoteLane    = prometheus.NewDesc("qos_pack_vote_lane_length", "simple votes waiting in the vote lane", nil, nil)
)

func (c packExtraCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descVotesLanded
	ch <- descSlotLimit
	ch <- descSlots
	ch <- descVoteLane
}

func (c packExtraCollector) Collect(ch chan<- prometheus.Metric) {
	st, _ := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(descVotesLanded, prometheus.CounterValue, float64(st.VotesLanded))
	ch <- prometheus.MustNewConstMetric(descSlotLimit, prometheus.GaugeValue, float64(st.SlotLimit))
	ch <- prometheus.MustNewConstMetric(descSlots, prometheus.CounterValue, float64(st.Slots))
	ch <- prometheus.MustNewConstMetric(descVoteLane, prometheus.GaugeValue, float64(st.VoteLen))
}
