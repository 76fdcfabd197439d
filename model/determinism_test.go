package model

import (
	"bytes"
	"testing"
)

// TestDeterministicRuns: a model is a function of its parameters and its
// calls: two models fed the same sequence (each with its own random hash
// seed, so their index layouts differ) save byte-identical files.
func TestDeterministicRuns(t *testing.T) {
	for _, p := range []Params{DefaultParams(), smallParams()} {
		steps := sequence(11, 30_000)
		a, b := New(p), New(p)
		run(a, steps)
		run(b, steps)
		ea, _ := a.AppendBinary(nil)
		eb, _ := b.AppendBinary(nil)
		if !bytes.Equal(ea, eb) {
			t.Fatalf("params %+v: equal sequences give different files: %v", p, Diff(a, b, 0))
		}
		if a.Stats().EvictedIPs == 0 && p.MaxIPs < 100 {
			t.Fatal("small params evicted nothing: the test does not exercise eviction")
		}
	}
}

// TestSaveLoadContinue: a model saved, loaded and fed the rest of a
// sequence ends identical to one fed the whole sequence (eviction order
// included: it is restored from the stamps).
func TestSaveLoadContinue(t *testing.T) {
	p := smallParams()
	steps := sequence(12, 20_000)
	whole := New(p)
	run(whole, steps)
	for _, cut := range []int{0, 1, 777, 10_000, 19_999} {
		first := New(p)
		run(first, steps[:cut])
		data, _ := first.AppendBinary(nil)
		loaded, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		run(loaded, steps[cut:])
		if d := Diff(whole, loaded, 0); d != nil {
			t.Fatalf("cut at %d: %v", cut, d)
		}
	}
}
