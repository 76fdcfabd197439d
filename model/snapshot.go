package model

import (
	"fmt"
	"math"
	"slices"
)

// IPScore is one entry of the IP table.
type IPScore struct {
	IP    IP
	Score float64
}

// IPPenalty is one penalty-only IP: penalised, never learned. It scores
// the learned IP median × Mult (at least MinScore); Mult is the product of
// the penalty factors it received.
type IPPenalty struct {
	IP   IP
	Mult float64
}

// SignerScore is one entry of the signer table.
type SignerScore struct {
	Signer Signer
	Score  float64
}

// Snapshot is a model's whole state as plain values: what Save writes.
type Snapshot struct {
	Params    Params
	IPs       []IPScore     // learned IPs, sorted by key bytes
	Penalized []IPPenalty   // penalty-only IPs, sorted by key bytes
	Signers   []SignerScore // sorted by key bytes
	Pending   []Observation // buffered for the next learn, in order
	Stats     Stats
}

// Snapshot returns a copy of m's state, tables sorted by key.
func (m *IPSigner) Snapshot() Snapshot {
	s := Snapshot{
		Params:    m.p,
		IPs:       make([]IPScore, len(m.ips.slab)),
		Penalized: make([]IPPenalty, len(m.ips.pslab)),
		Signers:   make([]SignerScore, len(m.signers.slab)),
		Pending:   slices.Clone(m.pending),
		Stats:     m.Stats(),
	}
	for i, e := range m.ips.slab {
		s.IPs[i] = IPScore{e.key, e.score}
	}
	for i, e := range m.ips.pslab {
		s.Penalized[i] = IPPenalty{e.key, e.mult}
	}
	for i, e := range m.signers.slab {
		s.Signers[i] = SignerScore{e.key, e.score}
	}
	slices.SortFunc(s.IPs, func(a, b IPScore) int { return a.IP.compare(b.IP) })
	slices.SortFunc(s.Penalized, func(a, b IPPenalty) int { return a.IP.compare(b.IP) })
	slices.SortFunc(s.Signers, func(a, b SignerScore) int { return a.Signer.compare(b.Signer) })
	return s
}

// restore loads s into the empty model m (same Params). REQUIRES: IP keys
// unique across IPs and Penalized, all keys canonical, scores finite and
// at least MinScore, multipliers in [0, 1].
func (m *IPSigner) restore(s Snapshot) {
	for _, e := range s.IPs {
		m.ips.slab = append(m.ips.slab, entry[IP]{key: e.IP, score: e.Score})
		m.ips.index[e.IP] = int32(len(m.ips.slab) - 1)
	}
	for _, e := range s.Penalized {
		m.ips.insertPen(e.IP, e.Mult)
	}
	for _, e := range s.Signers {
		m.signers.slab = append(m.signers.slab, entry[Signer]{key: e.Signer, score: e.Score})
		m.signers.index[e.Signer] = int32(len(m.signers.slab) - 1)
	}
	m.ips.rebuild()
	m.signers.rebuild()
	m.pending = append(m.pending[:0], s.Pending...)
	m.observations = s.Stats.Observations
	m.learns = s.Stats.Learns
	m.penalties = s.Stats.Penalties
	m.penalizedNew = s.Stats.PenalizedNew
	m.prunedIPs = s.Stats.PrunedIPs
	m.prunedSigner = s.Stats.PrunedSigners
}

// Diff compares two models' parameters, tables and buffered observations
// (not their counters) and returns one line per difference, at most 20
// (then a count of the rest); nil means equal. Scores are equal when
// |a-b| ≤ tol·max(1, |a|, |b|); tol 0 asks for identical bits.
func Diff(a, b *IPSigner, tol float64) []string {
	var out []string
	more := 0
	add := func(format string, args ...any) {
		if len(out) < 20 {
			out = append(out, fmt.Sprintf(format, args...))
		} else {
			more++
		}
	}
	sa, sb := a.Snapshot(), b.Snapshot()
	if sa.Params != sb.Params {
		add("params: %+v vs %+v", sa.Params, sb.Params)
	}
	diffTable(sa.IPs, sb.IPs, func(e IPScore) IP { return e.IP },
		func(e IPScore) float64 { return e.Score }, IP.compare, "ip", tol, add)
	diffTable(sa.Penalized, sb.Penalized, func(e IPPenalty) IP { return e.IP },
		func(e IPPenalty) float64 { return e.Mult }, IP.compare, "penalty-only ip", tol, add)
	diffTable(sa.Signers, sb.Signers, func(e SignerScore) Signer { return e.Signer },
		func(e SignerScore) float64 { return e.Score }, Signer.compare, "signer", tol, add)
	if len(sa.Pending) != len(sb.Pending) {
		add("pending: %d vs %d observations", len(sa.Pending), len(sb.Pending))
	} else {
		for i := range sa.Pending {
			if sa.Pending[i] != sb.Pending[i] {
				add("pending[%d]: %+v vs %+v", i, sa.Pending[i], sb.Pending[i])
			}
		}
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("... and %d more differences", more))
	}
	return out
}

func diffTable[E any, K fmt.Stringer](a, b []E, keyOf func(E) K, scoreOf func(E) float64,
	cmp func(K, K) int, what string, tol float64, add func(string, ...any)) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case i == len(a):
			c = 1
		case j == len(b):
			c = -1
		default:
			c = cmp(keyOf(a[i]), keyOf(b[j]))
		}
		switch {
		case c < 0:
			add("%s %s only in the first model (score %v)", what, keyOf(a[i]), scoreOf(a[i]))
			i++
		case c > 0:
			add("%s %s only in the second model (score %v)", what, keyOf(b[j]), scoreOf(b[j]))
			j++
		default:
			x, y := scoreOf(a[i]), scoreOf(b[j])
			if !near(x, y, tol) {
				add("%s %s: score %v vs %v", what, keyOf(a[i]), x, y)
			}
			i++
			j++
		}
	}
}

func near(x, y, tol float64) bool {
	if tol == 0 {
		return math.Float64bits(x) == math.Float64bits(y)
	}
	return math.Abs(x-y) <= tol*max(1, math.Abs(x), math.Abs(y))
}
