package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// oracle is a slow, obvious re-implementation of the model's semantics on
// plain maps and full sorts, to check the heaps, selections and pruning.
type oracle struct {
	p       Params
	ips     map[IP]float64 // learned
	pen     map[IP]float64 // penalty-only: multipliers
	signers map[Signer]float64
}

func newOracle(p Params) *oracle {
	return &oracle{p: p, ips: map[IP]float64{}, pen: map[IP]float64{}, signers: map[Signer]float64{}}
}

func oMedian[K comparable](tab map[K]float64) float64 {
	if len(tab) == 0 {
		return 1
	}
	v := make([]float64, 0, len(tab))
	for _, s := range tab {
		v = append(v, s)
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	l, h := v[n/2-1], v[n/2]
	return l + (h-l)*0.5
}

func oPrune[K key[K]](tab map[K]float64, limit int) {
	if len(tab) <= limit {
		return
	}
	m := oMedian(tab)
	keys := make([]K, 0, len(tab))
	for k := range tab {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int {
		da, db := math.Abs(tab[a]-m), math.Abs(tab[b]-m)
		switch {
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return a.compare(b)
	})
	for _, k := range keys[:len(tab)-limit] {
		delete(tab, k)
	}
}

// oLearn: learned keys move by EMA toward their mean or the learned median,
// new keys enter at their mean (times their multiplier, leaving pen, when
// penalty-only), scores are floored, then the learned keys are pruned;
// other penalty-only keys keep their multipliers.
func oLearn[K key[K]](tab, pen map[K]float64, keys []K, vals []float64, p Params, limit int) {
	m0 := oMedian(tab)
	sum, cnt := map[K]float64{}, map[K]int{}
	for i, k := range keys {
		sum[k] += vals[i]
		cnt[k]++
	}
	for k, s := range tab {
		target := m0
		if cnt[k] >= p.MinObservations {
			target = sum[k] / float64(cnt[k])
		}
		tab[k] = max(p.MinScore, float64(s*(1-p.Alpha))+float64(target*p.Alpha))
	}
	for k, s := range sum {
		if _, known := tab[k]; !known && cnt[k] >= p.MinObservations {
			v := s / float64(cnt[k])
			if mult, ok := pen[k]; ok {
				v *= mult
				delete(pen, k)
			}
			tab[k] = max(p.MinScore, v)
		}
	}
	oPrune(tab, limit)
}

// oPrunePen removes the len-limit penalty-only keys with the largest
// multipliers, lower key bytes first among equals.
func oPrunePen(pen map[IP]float64, limit int) {
	if len(pen) <= limit {
		return
	}
	keys := make([]IP, 0, len(pen))
	for k := range pen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b IP) int {
		switch {
		case pen[a] > pen[b]:
			return -1
		case pen[a] < pen[b]:
			return 1
		}
		return a.compare(b)
	})
	for _, k := range keys[:len(pen)-limit] {
		delete(pen, k)
	}
}

func (o *oracle) learn(batch []Observation) {
	vals := make([]float64, len(batch))
	ips := make([]IP, len(batch))
	sgs := make([]Signer, len(batch))
	for i, b := range batch {
		vals[i] = Value(o.p, b)
		ips[i] = b.IP.canonical()
		sgs[i] = b.Signer
	}
	oLearn(o.ips, o.pen, ips, vals, o.p, o.p.MaxIPs)
	oLearn(o.signers, map[Signer]float64{}, sgs, vals, o.p, o.p.MaxSigners)
}

func (o *oracle) penalize(ip IP) {
	ip = ip.canonical()
	if s, ok := o.ips[ip]; ok {
		o.ips[ip] = max(o.p.MinScore, s*o.p.PenaltyFactor)
		return
	}
	if mult, ok := o.pen[ip]; ok {
		o.pen[ip] = mult * o.p.PenaltyFactor
		return
	}
	if len(o.pen) >= 2*o.p.MaxIPs {
		oPrunePen(o.pen, o.p.MaxIPs)
	}
	o.pen[ip] = o.p.PenaltyFactor
}

// forward is the oracle's score of (ip, s).
func (o *oracle) forward(ip IP, s Signer) float64 {
	ip = ip.canonical()
	m := oMedian(o.ips)
	is, ok := o.ips[ip]
	if !ok {
		is = m
		if mult, ok := o.pen[ip]; ok {
			is = max(o.p.MinScore, m*mult)
		}
	}
	ss, ok := o.signers[s]
	if !ok {
		ss = oMedian(o.signers)
	}
	return is * ss
}

// checkTable verifies a table's internal consistency: index ↔ slab, heap
// positions, heap order, balance and the median.
func checkTable[K key[K]](t *testing.T, what string, tb *table[K]) {
	t.Helper()
	if len(tb.index) != len(tb.slab)+len(tb.pslab) {
		t.Fatalf("%s: index has %d keys, slab %d, pslab %d", what, len(tb.index), len(tb.slab), len(tb.pslab))
	}
	for k, s := range tb.index {
		if s >= 0 && (int(s) >= len(tb.slab) || tb.slab[s].key != k) ||
			s < 0 && (int(^s) >= len(tb.pslab) || tb.pslab[^s].key != k) {
			t.Fatalf("%s: index points %v to a wrong slot", what, k)
		}
	}
	for i, e := range tb.slab {
		if !(e.score >= tb.floor) || !finite(e.score) {
			t.Fatalf("%s: slot %d score %v, floor %v", what, i, e.score, tb.floor)
		}
	}
	for i, e := range tb.pslab {
		if !(e.mult >= 0 && e.mult <= 1) {
			t.Fatalf("%s: penalty-only slot %d multiplier %v", what, i, e.mult)
		}
	}
	if len(tb.lo)+len(tb.hi) != len(tb.slab) || len(tb.lo) < len(tb.hi) || len(tb.lo) > len(tb.hi)+1 {
		t.Fatalf("%s: heaps of %d and %d for %d entries", what, len(tb.lo), len(tb.hi), len(tb.slab))
	}
	for _, side := range []struct {
		name string
		h    []item
		pos  func(int) int32
		ok   func(parent, child float64) bool
	}{
		{"lo", tb.lo, func(i int) int32 { return int32(i) }, func(p, c float64) bool { return p >= c }},
		{"hi", tb.hi, func(i int) int32 { return ^int32(i) }, func(p, c float64) bool { return p <= c }},
	} {
		for i, it := range side.h {
			if tb.slab[it.slot].pos != side.pos(i) {
				t.Fatalf("%s: %s[%d] pos %d", what, side.name, i, tb.slab[it.slot].pos)
			}
			if it.v != tb.slab[it.slot].score {
				t.Fatalf("%s: %s[%d] holds %v, slab %v", what, side.name, i, it.v, tb.slab[it.slot].score)
			}
			if i > 0 && !side.ok(side.h[(i-1)/2].v, it.v) {
				t.Fatalf("%s: %s heap order broken at %d", what, side.name, i)
			}
		}
	}
	if len(tb.hi) > 0 && tb.lo[0].v > tb.hi[0].v {
		t.Fatalf("%s: max(lo) > min(hi)", what)
	}
	tab := map[K]float64{}
	for _, e := range tb.slab {
		tab[e.key] = e.score
	}
	if want := oMedian(tab); math.Float64bits(tb.median) != math.Float64bits(want) {
		t.Fatalf("%s: median %v, want %v", what, tb.median, want)
	}
}

func sameTables[K key[K]](t *testing.T, what string, tb *table[K], want, wantPen map[K]float64) {
	t.Helper()
	if len(tb.pslab) != len(wantPen) {
		t.Fatalf("%s: %d penalty-only entries, oracle %d", what, len(tb.pslab), len(wantPen))
	}
	for _, e := range tb.pslab {
		w, ok := wantPen[e.key]
		if !ok {
			t.Fatalf("%s: penalty-only key %v not in the oracle", what, e.key)
		}
		if math.Float64bits(w) != math.Float64bits(e.mult) {
			t.Fatalf("%s: penalty-only key %v multiplier %v, oracle %v", what, e.key, e.mult, w)
		}
	}
	if len(tb.slab) != len(want) {
		t.Fatalf("%s: %d entries, oracle %d", what, len(tb.slab), len(want))
	}
	for _, e := range tb.slab {
		w, ok := want[e.key]
		if !ok {
			t.Fatalf("%s: key %v not in the oracle", what, e.key)
		}
		if math.Float64bits(w) != math.Float64bits(e.score) {
			t.Fatalf("%s: key %v score %v, oracle %v", what, e.key, e.score, w)
		}
	}
}

// TestAgainstOracle drives random learns and penalties, on small tables so
// that pruning happens constantly, with values drawn from a small set so
// that ties (equal scores, equal distances to the median) are common.
func TestAgainstOracle(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		r := rand.New(rand.NewPCG(seed, 7))
		p := DefaultParams()
		p.BatchSize, p.MinObservations = 60, 1+int(seed%3)
		p.MaxIPs, p.MaxSigners = 5+int(seed)*7, 3+int(seed)*5
		if seed%2 == 0 { // a floor that binds: penalties and zero fees reach it
			p.MinScore = 1e-6
		}
		m, o := New(p), newOracle(p)
		fees := []uint64{0, 100_000, 200_000, 300_000, 5000, 123_457}
		for step := 0; step < 300; step++ {
			if r.IntN(3) == 0 {
				n := 1 + r.IntN(20)
				for range n {
					ip := ip4(10, 0, byte(r.IntN(2)), byte(r.IntN(60)))
					m.Penalize(ip)
					o.penalize(ip)
					checkTable(t, "ips after penalize", m.ips)
				}
			} else {
				batch := make([]Observation, r.IntN(2*p.BatchSize))
				for i := range batch {
					batch[i] = Observation{
						IP:     ip4(10, 0, 0, byte(r.IntN(60))),
						Signer: signer(uint16(r.IntN(40))),
						Fee:    fees[r.IntN(len(fees))],
					}
					if r.IntN(2) == 0 {
						batch[i].ExecNanos = 1 + r.Uint64N(400_000)
					}
				}
				m.Learn(batch)
				o.learn(batch)
			}
			checkTable(t, "ips", m.ips)
			checkTable(t, "signers", m.signers)
			sameTables(t, "ips", m.ips, o.ips, o.pen)
			sameTables(t, "signers", m.signers, o.signers, map[Signer]float64{})
			for range 20 {
				ip, sg := ip4(10, 0, byte(r.IntN(2)), byte(r.IntN(64))), signer(uint16(r.IntN(44)))
				if got, want := m.Forward(ip, sg), o.forward(ip, sg); math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("seed %d step %d: Forward(%v) = %v, oracle %v", seed, step, ip, got, want)
				}
			}
		}
	}
}

// TestSelectSmallest checks the quickselect against a sort, on inputs full
// of equal values (ordered only by key), including its fallback to sorting
// (forced with small budgets).
func TestSelectSmallest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{1, 2, 3, 12, 13, 14, 100, 1000, 3000} {
		tb := newTable[IP](n, 0, 1, 1e-30)
		for i := range n {
			tb.slab = append(tb.slab, entry[IP]{key: ip4(1, byte(i>>16), byte(i>>8), byte(i)), score: float64(r.IntN(5))})
		}
		want := slices.Clone(tb.items(false, 0))
		slices.SortFunc(want, tb.cmpItems)
		for _, k := range []int{0, 1, n / 3, n / 2, n - 1, n} {
			s := tb.items(false, 0)
			r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
			for _, budget := range []int{-1, 0, 1, 3} { // -1: the default budget
				if budget < 0 {
					tb.selectSmallest(s, k)
				} else {
					tb.selectWithin(s, k, budget)
				}
				got := slices.Clone(s[:k])
				slices.SortFunc(got, tb.cmpItems)
				if !slices.Equal(got, want[:k]) {
					t.Fatalf("n %d k %d budget %d: wrong set", n, k, budget)
				}
				r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
			}
		}
	}
}
