package packmode

import (
	"testing"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/pack"
)

// BenchmarkMeterHooks measures the metering the loop does per worker
// answer (workerAnswered, once per batch of up to 64 transactions) and
// per progress message (progressSeen): ns/op is one of each.
func BenchmarkMeterHooks(b *testing.B) {
	l := &Loop{st: &Stats{}}
	l.cfg.Budget.BlockLimit = pack.BlockCostLimit
	b.ReportAllocs()
	for i := range b.N {
		l.now = int64(i) * 1000
		l.workerAnswered(i&7, l.now-700)
		l.progressSeen(uint64(i>>6), bindings.LeaderReady, uint64(48_000_000-i&63*1000))
	}
}
