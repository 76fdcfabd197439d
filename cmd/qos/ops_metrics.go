package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/solqos/qos/sidecar"
)

// configCollector exports the settings an operator compares the live
// figures with: the sending target (qos-cli top and the dashboard show sent
// per second against it) and the queue's capacity (its fill).
type configCollector struct {
	targetPPS     float64
	queueCapacity float64
}

func newConfigCollector(cfg sidecar.Config) configCollector {
	return configCollector{targetPPS: float64(cfg.TargetPPS), queueCapacity: float64(cfg.QueueCapacity)}
}

var (
	descTargetPPS = prometheus.NewDesc("qos_target_pps", "Packets per second the pacer hands to sigverify (--target-pps).", nil, nil)
	descQueueCap  = prometheus.NewDesc("qos_queue_capacity", "Packets the priority queue holds (--queue-capacity).", nil, nil)
)

func (c configCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTargetPPS
	ch <- descQueueCap
}

func (c configCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descTargetPPS, prometheus.GaugeValue, c.targetPPS)
	ch <- prometheus.MustNewConstMetric(descQueueCap, prometheus.GaugeValue, c.queueCapacity)
}
