package model

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// sybilIP is the i-th IP of a flood: 100.64.0.0/10 and up, all distinct.
func sybilIP(i int) IP {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 0x64400000+uint32(i))
	return IPv4(b)
}

// honestBatch returns a batch in which each of n IPs (from base) and
// signers sends MinObservations rows worth 1 + (i mod 7).
func honestBatch(p Params, base, n int) []Observation {
	var out []Observation
	for i := range n {
		k := base + i
		ip := ip4(10, byte(k>>16), byte(k>>8), byte(k))
		out = append(out, rows(ip, signer(uint16(k)), p.MinObservations, float64(1+k%7))...)
	}
	return out
}

// TestSybilFloodKeepsMedian: 100 000 distinct IPs, each penalised once
// (a rotating sybil flood), leave the learned median bit-identical, so an
// unknown honest IP still scores it; the penalty-only entries stay
// bounded. Interleaved with learning, the median stays where the honest
// traffic puts it, where entering penalised IPs into the median would
// have driven it down geometrically.
func TestSybilFloodKeepsMedian(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	m.Learn(honestBatch(p, 0, 80))
	before := m.Stats()
	s := signer(3)
	sigScore := signerScore(t, m, s)
	fresh := ip4(192, 0, 2, 1)
	for i := range 100_000 {
		m.Penalize(sybilIP(i))
	}
	after := m.Stats()
	t.Logf("IP median before the flood %v, after 100 000 penalised IPs %v; %d penalty-only entries, %d pruned",
		before.MedianIP, after.MedianIP, after.PenalizedIPs, after.PrunedIPs)
	if math.Float64bits(after.MedianIP) != math.Float64bits(before.MedianIP) || after.IPs != before.IPs {
		t.Fatalf("flood moved the learned median %v → %v (IPs %d → %d)", before.MedianIP, after.MedianIP, before.IPs, after.IPs)
	}
	if after.PenalizedIPs > 2*p.MaxIPs || after.PenalizedNew != 100_000 {
		t.Fatalf("penalty-only entries not bounded: %+v", after)
	}
	if got := m.Forward(fresh, s); got != after.MedianIP*sigScore {
		t.Fatalf("unknown IP Forward = %v, want median %v × signer %v", got, after.MedianIP, sigScore)
	}
	if got, want := m.Forward(sybilIP(99_999), s), max(p.MinScore, after.MedianIP*p.PenaltyFactor)*sigScore; got != want {
		t.Fatalf("a flood IP's Forward = %v, want median × %v × signer = %v", got, p.PenaltyFactor, want)
	}

	// The attack goes on while honest traffic is learned: 40 batches, each
	// followed by 5 000 new penalised IPs.
	next := 100_000
	for b := range 40 {
		m.Learn(honestBatch(p, 80+b%3, 80))
		for range 5000 {
			m.Penalize(sybilIP(next))
			next++
		}
	}
	st := m.Stats()
	t.Logf("after 40 more batches and 200 000 more penalised IPs: IP median %v, %d learned IPs, %d penalty-only",
		st.MedianIP, st.IPs, st.PenalizedIPs)
	if st.MedianIP < 1 || st.MedianIP > 7 || st.PenalizedIPs > 2*p.MaxIPs {
		t.Fatalf("median %v left the honest range [1, 7]: %+v", st.MedianIP, st)
	}
	checkTable(t, "ips", m.ips)
}

// TestMinScoreFloor: 1000 penalties take a learned IP, a penalty-only IP
// and their products with a signer down to MinScore, never to 0; a zero
// value learned enters at the floor.
func TestMinScoreFloor(t *testing.T) {
	p := DefaultParams()
	m := New(p)
	known, sybil, s := ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), signer(1)
	m.Learn(cat(rows(known, s, 5, 2), rows(ip4(10, 0, 0, 3), signer(2), 5, 0)))
	for range 1000 {
		m.Penalize(known)
		m.Penalize(sybil)
	}
	wantScore(t, "learned IP after 1000 penalties", ipScore(t, m, known), p.MinScore, 1e-30)
	wantScore(t, "penalty-only IP after 1000 penalties", ipScore(t, m, sybil), p.MinScore, 1e-30)
	wantScore(t, "zero-value signer", signerScore(t, m, signer(2)), p.MinScore, 1e-30)
	if f := m.Forward(sybil, signer(2)); f != p.MinScore*p.MinScore || f == 0 {
		t.Fatalf("Forward of two floored keys = %v, want %v", f, p.MinScore*p.MinScore)
	}
	// The EMA keeps the floor too: a floored key with no new value moves
	// toward the median and stays ≥ MinScore; a known key averaging 0
	// stays at it.
	m.Learn(rows(ip4(10, 0, 0, 3), signer(2), 5, 0))
	if sc := signerScore(t, m, signer(2)); sc != p.MinScore {
		t.Fatalf("zero-value signer after a zero batch = %v", sc)
	}
	checkTable(t, "ips", m.ips)
	checkTable(t, "signers", m.signers)

	// A raised floor applies at once.
	q := p
	q.MinScore = 1e-20
	if err := m.SetParams(q); err != nil {
		t.Fatal(err)
	}
	wantScore(t, "learned IP under a raised floor", ipScore(t, m, known), 1e-20, 1e-20)
	wantScore(t, "penalty-only IP under a raised floor", ipScore(t, m, sybil), 1e-20, 1e-20)
	checkTable(t, "ips after SetParams", m.ips)
}

// TestPenaltyOnlyLearns: A=2, B=4, C=9 (median 4). E, unknown, is
// penalised twice: penalty-only, multiplier 1e-4, score 4e-4. F once:
// 0.01. A batch where E has 5 observations of 6: E becomes learned at
// 6 × 1e-4 (it keeps the penalty it carried, as if it had been learned
// first and penalised after); F (4 observations) stays penalty-only with
// its multiplier 0.01, scoring the new median × 0.01.
func TestPenaltyOnlyLearns(t *testing.T) {
	m := New(DefaultParams())
	a, b, c, e, f := ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), ip4(10, 0, 0, 3), ip4(10, 0, 0, 5), ip4(10, 0, 0, 6)
	s := signer(1)
	m.Learn(cat(rows(a, s, 5, 2), rows(b, s, 5, 4), rows(c, s, 5, 9)))
	m.Penalize(e)
	m.Penalize(e)
	m.Penalize(f)
	wantScore(t, "E penalty-only", ipScore(t, m, e), 4*float64(0.01*0.01), 4e-4)
	if st := m.Stats(); st.PenalizedIPs != 2 || st.IPs != 3 {
		t.Fatalf("stats %+v", st)
	}
	m.Learn(cat(rows(e, s, 5, 6), rows(f, s, 4, 100))) // F: too few observations
	st := m.Stats()
	if st.PenalizedIPs != 1 || st.IPs != 4 {
		t.Fatalf("after learning: %+v", st)
	}
	wantScore(t, "E learned", ipScore(t, m, e), float64(6*float64(0.01*0.01)), 6e-4)
	wantScore(t, "F still penalty-only", ipScore(t, m, f), float64(st.MedianIP*0.01), st.MedianIP*0.01)
	// E now counts in the median: {ema(2,4), ema(4,4), ema(9,4), 6e-4}.
	wantScore(t, "median", st.MedianIP, midpoint(ema(2, 4, 0.05), ema(4, 4, 0.05)), 3.05)
	checkTable(t, "ips", m.ips)
}

// TestPenaltyOnlyBounded: a flood of penalised new IPs never holds more
// than 2·MaxIPs penalty-only entries; pruning drops the least penalised,
// so an IP penalised often survives a flood of IPs penalised once; the
// learned table is untouched.
func TestPenaltyOnlyBounded(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs = 100
	m := New(p)
	m.Learn(honestBatch(p, 0, 50))
	heavy := ip4(10, 200, 0, 1)
	for range 3 {
		m.Penalize(heavy)
	}
	for i := range 5000 {
		m.Penalize(sybilIP(i))
		if st := m.Stats(); st.PenalizedIPs > 2*p.MaxIPs || st.IPs != 50 {
			t.Fatalf("after %d flood penalties: %+v", i+1, st)
		}
	}
	st := m.Stats()
	if st.PrunedIPs == 0 || st.PenalizedIPs < p.MaxIPs {
		t.Fatalf("flood never pruned: %+v", st)
	}
	wantScore(t, "heavily penalised IP kept", ipScore(t, m, heavy), max(p.MinScore, st.MedianIP*float64(float64(0.01*0.01)*0.01)), st.MedianIP*1e-6)
	// Memory stays where New put it: the penalty-only slab never grows.
	if c := cap(m.ips.pslab); c != 2*p.MaxIPs {
		t.Fatalf("penalty-only slab capacity %d, want %d", c, 2*p.MaxIPs)
	}
	checkTable(t, "ips", m.ips)
}

// TestPenalizeFloodAllocs: in steady state (penalty-only table cycling
// between MaxIPs and 2·MaxIPs) a flood of penalised new IPs allocates
// nothing, nor do Forward and Penalize on penalty-only IPs.
func TestPenalizeFloodAllocs(t *testing.T) {
	p := DefaultParams()
	p.MaxIPs = 1000
	m := New(p)
	m.Learn(honestBatch(p, 0, 50))
	r := rand.New(rand.NewPCG(1, 2))
	i := 0
	for range 10 * p.MaxIPs { // warm up: several prunes
		m.Penalize(sybilIP(i))
		i++
	}
	if a := testing.AllocsPerRun(5000, func() { m.Penalize(sybilIP(i)); i++ }); a != 0 {
		t.Errorf("Penalize new: %v allocations per call", a)
	}
	var sink float64
	if a := testing.AllocsPerRun(1000, func() { sink += m.Forward(sybilIP(i-1-r.IntN(500)), signer(1)) }); a != 0 {
		t.Errorf("Forward penalty-only: %v allocations per call", a)
	}
	if a := testing.AllocsPerRun(1000, func() { m.Penalize(sybilIP(i - 1 - r.IntN(500))) }); a != 0 {
		t.Errorf("Penalize penalty-only: %v allocations per call", a)
	}
	_ = sink
}
