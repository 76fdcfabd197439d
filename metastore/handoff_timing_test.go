package metastore

import "testing"

// BenchmarkHandoffOffer measures Offer with a writer goroutine recycling
// batches, the daemon's steady state.
// sinkBool keeps benchmark results alive.
var sinkBool bool

func BenchmarkHandoffOffer(b *testing.B) {
	h := NewHandoff(HandoffConfig{})
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case bt := <-h.full:
				h.release(bt)
			case <-stop:
				return
			}
		}
	}()
	defer close(stop)
	r := testRow(7)
	b.ReportAllocs()
	for b.Loop() {
		r.Seq++
		sinkBool = h.Offer(&r)
	}
	b.ReportMetric(float64(h.Dropped()), "dropped")
}
