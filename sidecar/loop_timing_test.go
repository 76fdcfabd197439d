package sidecar

import (
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// BenchmarkLoopAdmit measures the loop's per-packet work — pop, evaluate,
// recent check, model forward, score, dedup insert, queue push — on a full
// queue, with the producer pushing on the same goroutine.
//
// The dedup (partial meta) and recently-confirmed tables are random-access
// structures: at the daemon's default 1M entries each lookup is a cache
// miss; the small-table case shows what the rest of the path costs.
func BenchmarkLoopAdmit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		entries int
	}{{"tables=1M", 1 << 20}, {"tables=16k", 1 << 14}} {
		b.Run(bc.name, func(b *testing.B) {
			benchAdmit(b, func(c *Config) {
				c.QueueCapacity = 16384
				c.PartialCapacity, c.RecentCapacity = bc.entries, bc.entries
			})
		})
	}
}

func benchAdmit(b *testing.B, edit func(*Config)) {
	h := newHarness(b, edit)
	// Fill the recently-confirmed set, as a running validator would.
	var sig channels.Signature
	for i := range h.s.recent.Cap() {
		sig[0], sig[1], sig[2], sig[3], sig[63] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0xEE
		h.s.recent.Add((*[64]byte)(&sig))
	}
	tr := newTraffic(b, 8192)
	// The validator's side (tr.push, about 60 ns a packet) is inside the
	// timing: stopping the timer every few hundred packets costs more than
	// it hides. The ring is written shortly before it is read, as in
	// production.
	const chunk = 256
	b.ReportAllocs()
	b.SetBytes(channels.PacketSize)
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		tr.push(h.tpu, n)
		for got := 0; got < n; {
			got += h.s.drainPackets(0, h.s.in[0], int64(done))
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkLoopEndToEnd runs whole loop iterations (all inputs, pacer,
// output) while a second goroutine produces into tpu_to_qos as fast as it
// can; packets/s is what the loop took in, and skipped what the producer
// overwrote before the loop got to it.
func BenchmarkLoopEndToEnd(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.QueueCapacity = 16384; c.PartialCapacity = 1 << 20; c.TargetPPS = 1_000_000 })
	tr := newTraffic(b, 8192)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				tr.push(h.tpu, 256)
			}
		}
	}()
	b.ReportAllocs()
	var sink channels.Packet
	start := time.Now()
	b.ResetTimer()
	for h.s.snap.Received[0] < uint64(b.N) {
		now := time.Since(start).Nanoseconds()
		h.s.step(now, now)
		for h.out.Pop(&sink) {
		}
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(h.s.snap.Received[0])/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(h.s.in[0].Skipped()), "skipped")
}
