package model

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fullModel is a model whose tables are full: n honest IPs (and signers)
// with records, then a sybil flood of n fresh penalised IPs.
func fullModel(b *testing.B, n int) *IPSigner {
	b.Helper()
	p := DefaultParams()
	m := New(p)
	for i := range n {
		m.Observe(tx(ip4(10, byte(i>>16), byte(i>>8), byte(i)), signer(uint32(i)), 1000, i%3 > 0))
	}
	for i := range n {
		m.Penalize(ip4(100, 64+byte(i>>16), byte(i>>8), byte(i)), 1000)
	}
	return m
}

var sinkF float64

func BenchmarkForwardKnown(b *testing.B) {
	m := fullModel(b, 1<<16)
	ip, s := ip4(100, 64, 0, 7), signer(3)
	b.ReportAllocs()
	for b.Loop() {
		sinkF += m.Forward(ip, s)
	}
}

// BenchmarkForwardKnownPending is BenchmarkForwardKnown while the IP,
// its neighbourhoods and 4 096 other senders have claims pending.
func BenchmarkForwardKnownPending(b *testing.B) {
	m := fullModel(b, 1<<16)
	if err := m.TrackPending(DefaultPendingParams()); err != nil {
		b.Fatal(err)
	}
	ip, s := ip4(10, 0, 0, 7), signer(3)
	for i := range 4096 {
		m.Pend(ip4(10, 0, byte(i>>8), byte(i)), 1000, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkF += m.Forward(ip, s)
	}
}

// BenchmarkPendSettle: a claim made and settled per call (the send and
// the outcome of one packet), with 4 096 others pending.
func BenchmarkPendSettle(b *testing.B) {
	m := fullModel(b, 1<<16)
	if err := m.TrackPending(DefaultPendingParams()); err != nil {
		b.Fatal(err)
	}
	for i := range 4096 {
		m.Pend(ip4(10, 0, byte(i>>8), byte(i)), 1000, 0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m.Settle(m.Pend(ip4(10, 1, byte(i>>8), byte(i)), 1000, 0))
	}
}

func BenchmarkForwardUnknown(b *testing.B) {
	m := fullModel(b, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		sinkF += m.Forward(ip4(172, 16, byte(i>>8), byte(i)), signer(uint32(1<<30+i)))
	}
}

func BenchmarkObserve(b *testing.B) {
	m := fullModel(b, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m.Observe(tx(ip4(10, 0, byte(i>>8), byte(i)), signer(uint32(i&4095)), 1000, i&1 == 0))
	}
}

// BenchmarkPenalizeFlood: every call a fresh IP of a 1 M-IP sybil flood,
// each evicting the least recently updated entry.
func BenchmarkPenalizeFlood(b *testing.B) {
	m := fullModel(b, 1<<16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m.Penalize(ip4(100, 80+byte(i>>16&15), byte(i>>8), byte(i)), 1_500_000)
	}
}

// BenchmarkUpdateStallFlood measures the longest single update (Penalize
// or Observe) while 1 M fresh IPs are penalised amid honest traffic: the
// stall the daemon's loop sees. Reported as max-µs and p99.99-µs.
func BenchmarkUpdateStallFlood(b *testing.B) {
	for b.Loop() {
		m := New(DefaultParams())
		r := rand.New(rand.NewPCG(1, 2))
		d := make([]time.Duration, 0, 1_050_000)
		for i := range 1_000_000 {
			if i%20 == 0 {
				o := tx(ip4(10, 1, byte(r.IntN(8)), 1), signer(uint32(r.IntN(64))), 1000, true)
				t0 := time.Now()
				m.Observe(o)
				d = append(d, time.Since(t0))
			}
			ip := ip4(100, 64+byte(i>>16), byte(i>>8), byte(i))
			t0 := time.Now()
			m.Penalize(ip, 1_500_000)
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)-1].Nanoseconds())/1e3, "max-µs")
		b.ReportMetric(float64(d[len(d)*9999/10000].Nanoseconds())/1e3, "p99.99-µs")
		b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
	}
}

func BenchmarkSave64k(b *testing.B) {
	m := fullModel(b, 1<<16)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = m.AppendBinary(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkLoad64k(b *testing.B) {
	m := fullModel(b, 1<<16)
	data, _ := m.AppendBinary(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
