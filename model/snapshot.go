package model

import (
	"fmt"
	"math"
	"slices"
)

// Record is one key's record as saved: the means of the fee per CU its
// outcomes claimed, paid and failed (always 0 for signers), how many
// outcomes they average (at most Window), and the event number of its
// last update.
type Record struct {
	Claim float64
	Paid  float64
	Fail  float64
	N     float64
	Stamp uint64
}

// IPRecord is a record of the IP table or of a prefix table (the key is
// then the prefix, other bits zero).
type IPRecord struct {
	IP IP
	Record
}

// SignerRecord is a record of the signer table; Exp is the mean its IPs'
// factors predicted it would pay over the same outcomes.
type SignerRecord struct {
	Signer Signer
	Exp    float64
	Record
}

// Snapshot is a model's whole state as plain values: what Save writes.
type Snapshot struct {
	Params Params
	// Newcomer is the record of newcomer outcomes (its Stamp unused, 0).
	Newcomer Record
	// Bar is the inclusion bar learnt from paid claims (0: none yet).
	Bar float64
	// Events is the number of Observe and Penalize calls: every stamp is
	// below it.
	Events  uint64
	IPs     []IPRecord // sorted by key bytes
	Near    []IPRecord // /24 and /48 prefixes, sorted
	Wide    []IPRecord // /16 and /32 prefixes, sorted
	Signers []SignerRecord
	Stats   Stats
}

func ipRecords(t *table[IP]) []IPRecord {
	out := make([]IPRecord, 0, t.len())
	for _, e := range t.slots {
		out = append(out, IPRecord{e.key, Record{e.r.claim, e.r.paid, e.r.fail, e.r.n, e.stamp}})
	}
	slices.SortFunc(out, func(a, b IPRecord) int { return a.IP.compare(b.IP) })
	return out
}

// Snapshot returns a copy of m's state, tables sorted by key.
func (m *IPSigner) Snapshot() Snapshot {
	s := Snapshot{
		Params:   m.p,
		Newcomer: Record{Claim: m.newcomer.claim, Paid: m.newcomer.paid, Fail: m.newcomer.fail, N: m.newcomer.n},
		Bar:      m.bar,
		Events:   m.events,
		IPs:      ipRecords(m.ips),
		Near:     ipRecords(m.near),
		Wide:     ipRecords(m.wide),
		Signers:  make([]SignerRecord, 0, m.signers.len()),
		Stats:    m.Stats(),
	}
	for _, e := range m.signers.slots {
		s.Signers = append(s.Signers, SignerRecord{e.key, e.r.exp, Record{e.r.claim, e.r.paid, 0, e.r.n, e.stamp}})
	}
	slices.SortFunc(s.Signers, func(a, b SignerRecord) int { return a.Signer.compare(b.Signer) })
	return s
}

// newest returns the at most n entries of es with the highest stamps.
func newest[K comparable](es []node[K], n int) []node[K] {
	if len(es) <= n {
		return es
	}
	slices.SortFunc(es, func(a, b node[K]) int {
		switch {
		case a.stamp > b.stamp:
			return -1
		case a.stamp < b.stamp:
			return 1
		}
		return 0
	})
	return es[:n]
}

// fromSnapshot builds a model from s. Tables larger than s.Params allows
// keep their most recently updated entries; records averaging more than
// Window outcomes count as Window. REQUIRES: s.Params valid, keys unique
// and canonical per table, stamps unique per table and below s.Events,
// Claim, Paid, Fail and Exp finite and ≥ 0, N in [0, ∞).
func fromSnapshot(s Snapshot) *IPSigner {
	m := New(s.Params)
	w := float64(s.Params.Window)
	ipNodes := func(rs []IPRecord) []node[IP] {
		out := make([]node[IP], len(rs))
		for i, r := range rs {
			out[i] = node[IP]{key: r.IP, r: rec{claim: r.Claim, paid: r.Paid, fail: r.Fail, n: min(r.N, w)}, stamp: r.Stamp}
		}
		return out
	}
	m.ips.restore(newest(ipNodes(s.IPs), m.p.MaxIPs))
	m.near.restore(newest(ipNodes(s.Near), m.p.MaxPrefixes))
	m.wide.restore(newest(ipNodes(s.Wide), m.p.MaxPrefixes))
	sn := make([]node[Signer], len(s.Signers))
	for i, r := range s.Signers {
		sn[i] = node[Signer]{key: r.Signer, r: rec{claim: r.Claim, paid: r.Paid, exp: r.Exp, n: min(r.N, w)}, stamp: r.Stamp}
	}
	m.signers.restore(newest(sn, m.p.MaxSigners))
	m.newcomer = rec{claim: s.Newcomer.Claim, paid: s.Newcomer.Paid, fail: s.Newcomer.Fail, n: min(s.Newcomer.N, w)}
	m.bar = s.Bar
	m.events = s.Events
	m.observations = s.Stats.Observations
	m.paid = s.Stats.Paid
	m.penalties = s.Stats.Penalties
	m.ips.evicted = s.Stats.EvictedIPs + uint64(len(s.IPs)-m.ips.len())
	m.near.evicted = s.Stats.EvictedPrefixes + uint64(len(s.Near)-m.near.len()+len(s.Wide)-m.wide.len())
	m.signers.evicted = s.Stats.EvictedSigners + uint64(len(s.Signers)-m.signers.len())
	return m
}

// Diff compares two models' parameters, records and event counts (not
// their other counters) and returns one line per difference, at most 20
// (then a count of the rest); nil means equal. Numbers are equal when
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
	if !near(sa.Bar, sb.Bar, tol) {
		add("inclusion bar: %v vs %v", sa.Bar, sb.Bar)
	}
	if sa.Events != sb.Events {
		add("events: %d vs %d", sa.Events, sb.Events)
	}
	if !near(sa.Newcomer.Claim, sb.Newcomer.Claim, tol) || !near(sa.Newcomer.Paid, sb.Newcomer.Paid, tol) ||
		!near(sa.Newcomer.Fail, sb.Newcomer.Fail, tol) || !near(sa.Newcomer.N, sb.Newcomer.N, tol) {
		add("newcomer record: %+v vs %+v", sa.Newcomer, sb.Newcomer)
	}
	ipKey := func(e IPRecord) IP { return e.IP }
	ipRec := func(e IPRecord) []float64 { return []float64{e.Claim, e.Paid, e.Fail, e.N, float64(e.Stamp)} }
	diffTable(sa.IPs, sb.IPs, ipKey, ipRec, IP.compare, "ip", tol, add)
	diffTable(sa.Near, sb.Near, ipKey, ipRec, IP.compare, "near prefix", tol, add)
	diffTable(sa.Wide, sb.Wide, ipKey, ipRec, IP.compare, "wide prefix", tol, add)
	diffTable(sa.Signers, sb.Signers, func(e SignerRecord) Signer { return e.Signer },
		func(e SignerRecord) []float64 { return []float64{e.Claim, e.Paid, e.Exp, e.N, float64(e.Stamp)} },
		Signer.compare, "signer", tol, add)
	if more > 0 {
		out = append(out, fmt.Sprintf("... and %d more differences", more))
	}
	return out
}

func diffTable[E any, K fmt.Stringer](a, b []E, keyOf func(E) K, valsOf func(E) []float64,
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
			add("%s %s only in the first model (%v)", what, keyOf(a[i]), valsOf(a[i]))
			i++
		case c > 0:
			add("%s %s only in the second model (%v)", what, keyOf(b[j]), valsOf(b[j]))
			j++
		default:
			x, y := valsOf(a[i]), valsOf(b[j])
			for k := range x {
				if !near(x[k], y[k], tol) {
					add("%s %s: %v vs %v (claim, paid, fail or exp, n, stamp)", what, keyOf(a[i]), x, y)
					break
				}
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
