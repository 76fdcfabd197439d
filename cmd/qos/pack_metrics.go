package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// packConfigCollector exports the settings of `qos pack` an operator
// compares the live figures with: the queue's and the vote lane's
// capacities (their fill) and the workers the validator runs for qos.
type packConfigCollector struct {
	queueCapacity, voteCapacity, workers float64
}

var (
	descPackQueueCap = prometheus.NewDesc("qos_pack_queue_capacity", "Transactions the priority queue holds (--queue-capacity).", nil, nil)
	descPackVoteCap  = prometheus.NewDesc("qos_pack_vote_lane_capacity", "Votes the vote lane holds (--vote-capacity).", nil, nil)
	descPackWorkers  = prometheus.NewDesc("qos_pack_workers", "Execution workers the validator runs for qos (--workers).", nil, nil)
)

func (c packConfigCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPackQueueCap
	ch <- descPackVoteCap
	ch <- descPackWorkers
}

func (c packConfigCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descPackQueueCap, prometheus.GaugeValue, c.queueCapacity)
	ch <- prometheus.MustNewConstMetric(descPackVoteCap, prometheus.GaugeValue, c.voteCapacity)
	ch <- prometheus.MustNewConstMetric(descPackWorkers, prometheus.GaugeValue, c.workers)
}
