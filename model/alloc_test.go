package model

import (
	"math/rand/v2"
	"testing"
)

func TestZeroAllocs(t *testing.T) {
	m := filledModel(t, 4, 10, 0)
	snap := m.Snapshot()
	known, sg := snap.IPs[0].IP, snap.Signers[0].Signer
	unknown := ip4(250, 1, 2, 3)
	var sink float64
	f := func(name string, fn func()) {
		t.Helper()
		if a := testing.AllocsPerRun(1000, fn); a != 0 {
			t.Errorf("%s: %v allocations per call", name, a)
		}
	}
	f("Forward hit", func() { sink += m.Forward(known, sg) })
	f("Forward miss", func() { sink += m.Forward(unknown, signer(7)) })
	f("Penalize known", func() { m.Penalize(known) })
	o := rows(unknown, signer(7), 1, 1)[0]
	f("Observe (buffering)", func() {
		if m.Stats().Pending+1 >= m.Params().BatchSize {
			m.pending = m.pending[:0] // keep this test to buffering calls
		}
		m.Observe(o)
	})
	_ = sink
}

// TestLearnSteadyStateAllocs: once the tables are full, learning a batch
// (new keys entering, every key updated, pruning) allocates nothing.
func TestLearnSteadyStateAllocs(t *testing.T) {
	m := filledModel(t, 5, 30, 0)
	r := rand.New(rand.NewPCG(5, 5))
	batches := make([][]Observation, 8)
	for i := range batches {
		batches[i] = make([]Observation, m.Params().BatchSize)
		for j := range batches[i] {
			batches[i][j] = randomObs(r)
		}
	}
	for _, b := range batches { // warm up
		m.Learn(b)
	}
	i := 0
	a := testing.AllocsPerRun(20, func() {
		m.Learn(batches[i%len(batches)])
		i++
	})
	if a != 0 {
		t.Errorf("Learn allocates %v times per batch", a)
	}
}
