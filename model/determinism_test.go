package model

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// step is one call of a recorded sequence: an observation or a penalty.
type step struct {
	obs      Observation
	penalize bool
}

// sequence returns n steps over a small key space, so keys recur, learn,
// get pruned and get penalised. With integral, the values of all
// observations are integers (exact sums in any order).
func sequence(seed uint64, n int, integral bool) []step {
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]step, n)
	for i := range out {
		o := Observation{
			IP:     ip4(10, 9, byte(r.IntN(4)), byte(r.IntN(200))),
			Signer: signer(uint16(r.IntN(300))),
		}
		if integral {
			o.Fee = 100_000 * (1 + r.Uint64N(50)) // 1..50 when not executed
			if r.IntN(2) == 0 {
				o.ExecNanos = 1000 // (fee/1000)·10: an integer
			}
		} else {
			o.Fee = r.Uint64N(3_000_000)
			if r.IntN(2) == 0 {
				o.ExecNanos = 1 + r.Uint64N(500_000)
			}
		}
		out[i] = step{obs: o, penalize: r.IntN(40) == 0}
	}
	return out
}

func smallParams() Params {
	p := DefaultParams()
	p.BatchSize, p.MinObservations = 200, 2
	p.MaxIPs, p.MaxSigners = 150, 100
	return p
}

func run(m *IPSigner, steps []step) {
	for _, s := range steps {
		if s.penalize {
			m.Penalize(s.obs.IP)
		} else {
			m.Observe(s.obs)
		}
	}
}

// TestDeterministicRuns: the same sequence in separate models gives the
// same bytes (map iteration order is randomised per run and per map).
func TestDeterministicRuns(t *testing.T) {
	steps := sequence(1, 20_000, false)
	var first []byte
	for i := range 3 {
		m := New(smallParams())
		run(m, steps)
		if m.Stats().Learns < 50 || m.Stats().PrunedIPs == 0 || m.Stats().PrunedSigners == 0 {
			t.Fatalf("sequence too tame: %+v", m.Stats())
		}
		b := encode(t, m)
		if i == 0 {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("run %d encodes differently", i)
		}
	}
}

// TestShuffledBatches: with integral values (sums exact in any order),
// learning each batch in two different row orders gives the same bytes,
// so nothing but the sums depends on the order of rows: not slab slots,
// not new-key insertion order, not pruning. With α = 0 and MinObservations
// 1 scores keep the few values they enter with, so ties at the pruning
// boundary are the rule and must be broken by key, not by slot.
func TestShuffledBatches(t *testing.T) {
	tieHeavy := smallParams()
	tieHeavy.Alpha, tieHeavy.MinObservations = 0, 1
	for _, p := range []Params{smallParams(), tieHeavy} {
		steps := sequence(2, 40*p.BatchSize, true)
		a, b := New(p), New(p)
		r := rand.New(rand.NewPCG(9, 9))
		batch := make([]Observation, p.BatchSize)
		for i := 0; i < len(steps); i += p.BatchSize {
			for j := range batch {
				batch[j] = steps[i+j].obs
				if p.Alpha == 0 {
					batch[j].Fee = 100_000 * (1 + batch[j].Fee%3)
				}
			}
			a.Learn(batch)
			r.Shuffle(len(batch), func(x, y int) { batch[x], batch[y] = batch[y], batch[x] })
			b.Learn(batch)
			if steps[i].penalize {
				a.Penalize(steps[i].obs.IP)
				b.Penalize(steps[i].obs.IP)
			}
		}
		if a.Stats().PrunedIPs == 0 || a.Stats().PrunedSigners == 0 {
			t.Fatalf("no pruning happened: %+v", a.Stats())
		}
		if !bytes.Equal(encode(t, a), encode(t, b)) {
			t.Fatalf("alpha %v: shuffled batches give different models: %v", p.Alpha, Diff(a, b, 0))
		}
	}
}

// TestSaveLoadContinue: stopping mid-sequence (mid-batch), saving, loading
// and going on gives the same model as running straight through, though
// the loaded model's slab is in key order rather than arrival order.
func TestSaveLoadContinue(t *testing.T) {
	steps := sequence(3, 20_000, false)
	whole := New(smallParams())
	run(whole, steps)

	path := filepath.Join(t.TempDir(), "m.bin")
	part := New(smallParams())
	cut := 9_937 // not a batch boundary
	run(part, steps[:cut])
	if part.Stats().Pending == 0 {
		t.Fatal("cut at a batch boundary")
	}
	if err := part.Save(path); err != nil {
		t.Fatal(err)
	}
	resumed, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	run(resumed, steps[cut:])
	if !bytes.Equal(encode(t, whole), encode(t, resumed)) {
		t.Fatalf("save/load/continue differs: %v", Diff(whole, resumed, 0))
	}
}
