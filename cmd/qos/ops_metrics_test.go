package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/solqos/qos/sidecar"
)

// TestConfigCollector: the settings qos-cli top and the dashboard compare
// live figures with are exported as the daemon was configured.
func TestConfigCollector(t *testing.T) {
	cfg := sidecar.DefaultConfig()
	cfg.TargetPPS = 12345
	cfg.QueueCapacity = 4096
	want := `
# HELP qos_queue_capacity Packets the priority queue holds (--queue-capacity).
# TYPE qos_queue_capacity gauge
qos_queue_capacity 4096
# HELP qos_target_pps Packets per second the pacer hands to sigverify (--target-pps).
# TYPE qos_target_pps gauge
qos_target_pps 12345
`
	if err := testutil.CollectAndCompare(newConfigCollector(cfg), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
