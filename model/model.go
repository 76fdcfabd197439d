package model

import (
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
)

// Observation is one completed transaction, as the model learns from it.
type Observation struct {
	IP        IP
	Signer    Signer
	Fee       uint64 // total fee in lamports
	CUs       uint64 // compute units requested
	ExecNanos uint64 // execution time; 0 = not executed (never included, never paid)
	// SenderFault marks an unpaid outcome that no ranking could have
	// turned into a paid one: the transaction could never pay (its fee
	// payer cannot pay the fee, it is stale, a replay or malformed; pack
	// mode's sender-caused refusals). Such an outcome that its payer
	// already explains charges the payer only (Observe). An outcome
	// unpaid because it ranked too low (the sidecar's verified but never
	// included) is not one.
	SenderFault bool
}

// claim is the fee per compute unit o claimed (fee / max(CUs, 1)).
func (o *Observation) claim() float64 { return float64(o.Fee) / float64(max(o.CUs, 1)) }

// IPSigner is the IP/signer reputation model: score(ip, signer) =
// IPFactor(ip) × SignerFactor(signer), an estimate of the share of the fee
// per compute unit a packet from that source claims that it will actually
// pay if handed to sigverify. It is not safe for concurrent use: one goroutine owns it
// (Clone gives another goroutine its own copy).
type IPSigner struct {
	p        Params
	ips      *table[IP]     // per IP (IPv4 address, IPv6 /64)
	near     *table[IP]     // per /24 (IPv4) or /48 (IPv6)
	wide     *table[IP]     // per /16 (IPv4) or /32 (IPv6)
	signers  *table[Signer] // per fee payer
	newcomer rec            // outcomes of IPs the model barely knew: the unknown prior
	pend     *pending       // claims handed on, outcome not yet known (TrackPending); nil: none
	bar      float64        // inclusion bar: BarQuantile of paid claims' fee per CU; 0 = none yet

	events       uint64 // Observe and Penalize calls: the stamp of the next update
	observations uint64
	paid         uint64
	penalties    uint64
}

// Stats describes a model's state and what it has done since it was
// created (counters persist through Save and Load).
type Stats struct {
	IPs          int // IP entries
	NearPrefixes int // /24 and /48 entries
	WidePrefixes int // /16 and /32 entries
	Signers      int // signer entries
	// UnknownIP is the factor of an IP in a neighbourhood the model has
	// no record of: what newcomers have been doing lately.
	UnknownIP float64
	// Bar is the inclusion bar learnt so far (fee per CU; 0: none yet):
	// unpaid outcomes claiming less are neutral.
	Bar             float64
	Observations    uint64 // Observe calls
	Paid            uint64 // of which executed (paid)
	Penalties       uint64 // Penalize calls
	EvictedIPs      uint64 // entries evicted, least recently updated first
	EvictedPrefixes uint64
	EvictedSigners  uint64
}

// New returns an empty model with its tables allocated. REQUIRES:
// p.Validate() == nil (New panics otherwise; validate flags first).
func New(p Params) *IPSigner {
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("model.New: invalid params: %v", err))
	}
	seed := hashSeed()
	return &IPSigner{
		p:       p,
		ips:     newTable[IP](p.MaxIPs, seed),
		near:    newTable[IP](p.MaxPrefixes, seed^1),
		wide:    newTable[IP](p.MaxPrefixes, seed^2),
		signers: newTable[Signer](p.MaxSigners, seed^3),
	}
}

// hashSeed is a random key for the tables' hash, so that no sender can
// choose keys that collide. Results never depend on it.
func hashSeed() uint64 {
	var b [8]byte
	_, _ = crand.Read(b[:]) // never fails on Linux (Go 1.24+ panics otherwise)
	return binary.LittleEndian.Uint64(b[:])
}

// Params returns the model's parameters.
func (m *IPSigner) Params() Params { return m.p }

// Forward returns IPFactor(ip) × SignerFactor(s). It does not allocate.
func (m *IPSigner) Forward(ip IP, s Signer) float64 {
	return m.IPFactor(ip) * m.SignerFactor(s)
}

// IPFactor is ip's factor of Forward: the estimated share of its claims
// that is paid, each level's rate pulled toward the level above (unknown
// prior → /16 → /24 → IP), at least UnpaidFloor, times its validity (0
// for a sender whose claims fail half the time or more), at least
// MinScore. Claims pending (Pend) count among the claims of their IP's
// young records, as not failed (see the package doc). A caller that must
// refuse packets scoring no more than some bar can refuse an IP's packets
// before looking at their signer when IPFactor(ip) × MaxSignerFactor() ×
// the highest possible fee per CU is no more than it. It does not
// allocate.
func (m *IPSigner) IPFactor(ip IP) float64 {
	ip = ip.canonical()
	near, wide := ip.prefixes()
	recs := [3]*rec{m.ips.get(ip), m.near.get(near), m.wide.get(wide)}
	if q := m.pend; q != nil && q.live > 0 {
		if ps, ok := q.sums(ip, near, wide); ok {
			return m.pendingFactor(&recs, &ps)
		}
	}
	return max(m.p.MinScore, float64(m.validity(&recs)*max(m.rateOf(&recs), m.p.UnpaidFloor)))
}

// validity is the validity of the most specific of an IP's records (IP,
// /24, /16) that holds at least MinObservations outcomes, 1 when none
// does: a sender (or, for an IP not yet known, a neighbourhood) with half
// or more of its claims failing scores 0, whatever it was paid; one
// failing less than FailTolerance of its claims is not touched beyond its
// rate; a new IP's first garbled packet does not sink it.
func (m *IPSigner) validity(recs *[3]*rec) float64 {
	least := float64(max(m.p.MinObservations, 1))
	for _, r := range recs {
		if r != nil && r.n >= least {
			return r.validity(m.p.FailTolerance)
		}
	}
	return 1
}

// pendingFactor is IPFactor of an IP whose records (IP, /24, /16) are recs
// and whose pending claims per level are ps: each level's record with its
// pending claims folded in (withPending), for the rate and the validity
// alike; which record judges validity is still chosen by its settled
// outcomes. A pending claim is presumed paid at the level's prior as its
// claims that did not fail have been paid (the non-failed chain: the
// unknown prior, /16, /24 with their failed claims left out), so the
// failures of one young record, present at all three levels, are not
// counted once per level against its pending claims.
func (m *IPSigner) pendingFactor(recs *[3]*rec, ps *[3]pendSum) float64 {
	k, w := m.p.PriorWeight, float64(m.p.Window)
	p := shrink(&m.newcomer, m.p.UnknownPrior, k, w)
	nf := nonFailed(m.newcomer)
	q := shrink(&nf, m.p.UnknownPrior, k, w)
	var eff [3]rec
	for l := 2; l >= 0; l-- { // /16, /24, IP
		if r := recs[l]; r != nil {
			eff[l] = withPending(*r, ps[l], q, w)
			p = shrink(&eff[l], p, k, w)
			nf = nonFailed(*r)
			q = shrink(&nf, q, k, w)
		}
	}
	v := 1.0
	least := float64(max(m.p.MinObservations, 1))
	for l, r := range recs {
		if r != nil && r.n >= least {
			v = eff[l].validity(m.p.FailTolerance)
			break
		}
	}
	return max(m.p.MinScore, v*max(p, m.p.UnpaidFloor))
}

// SignerFactor is s's factor of Forward: what its transactions paid
// against what its IPs' factors predicted they would, pulled toward 1
// like a record toward its prior, capped at 1 (a signer can only lower a
// score: one that names another's fee payer gains nothing), 1 when
// unknown, at least MinScore. It does not allocate.
func (m *IPSigner) SignerFactor(s Signer) float64 {
	r := m.signers.get(s)
	if r == nil || !(r.claim > 0) {
		return 1
	}
	// Paid against predicted, each plus 1/Window of the claim: a payer
	// whose IPs predicted about nothing (a sender at its unpaid floor)
	// and that paid nothing is as predicted, not sunk further.
	d := float64(r.claim / float64(m.p.Window))
	x := min(1, float64(r.paid+d)/float64(r.exp+d))
	kk := float64(m.p.PriorWeight * float64(1-r.n/float64(m.p.Window)))
	f := float64(float64(x*r.n)+kk) / (r.n + kk)
	return max(m.p.MinScore, min(1, f))
}

// MaxSignerFactor returns the highest SignerFactor of any signer: 1.
func (m *IPSigner) MaxSignerFactor() float64 { return 1 }

// MinIPFactor returns the lowest IPFactor of any IP: MinScore.
func (m *IPSigner) MinIPFactor() float64 { return m.p.MinScore }

// ipRate is the unfloored IP factor of the canonical key ip (settled
// outcomes only: what Observe predicts with).
func (m *IPSigner) ipRate(ip IP) float64 {
	near, wide := ip.prefixes()
	return m.rateOf(&[3]*rec{m.ips.get(ip), m.near.get(near), m.wide.get(wide)})
}

// rateOf is the unfloored IP factor of an IP whose records (IP, /24, /16)
// are recs: the newcomer prior shrunk through /16, /24 and IP.
func (m *IPSigner) rateOf(recs *[3]*rec) float64 {
	k, w := m.p.PriorWeight, float64(m.p.Window)
	p := shrink(&m.newcomer, m.p.UnknownPrior, k, w)
	for l := 2; l >= 0; l-- {
		if r := recs[l]; r != nil {
			p = shrink(r, p, k, w)
		}
	}
	return p
}

// IPScore returns ip's factor and true when the model holds a record of
// that very IP, or its factor from its neighbourhood and false.
func (m *IPSigner) IPScore(ip IP) (float64, bool) {
	ip = ip.canonical()
	return m.IPFactor(ip), m.ips.get(ip) != nil
}

// SignerScore returns s's factor and whether the model holds a record of
// it.
func (m *IPSigner) SignerScore(s Signer) (float64, bool) {
	return m.SignerFactor(s), m.signers.get(s) != nil
}

// Observe learns from one completed transaction at once. It claimed its
// fee per CU; it paid that when executed, and nothing when it was verified
// but never included. The outcome updates the records of its IP, /24
// (/48) and /16 (/32), the newcomer record when the IP had fewer than
// MinObservations outcomes, and its signer's record with what its IP's
// factor predicted it would pay. It costs O(1), does not allocate, and
// reports true (the model changed). An observation without a fee (Fee
// 0) weighs the IP's usual claim, as an unparsable packet does.
//
// An unpaid outcome of the sender's fault (SenderFault) whose fee payer
// already explains it (payerExplains: a payer known to go unpaid from an
// IP whose outcomes are mostly paid, such as an empty account) updates
// the signer's record only: the payer's factor already
// sinks its transactions, and charging its IP again would lower every
// other payer's transactions from that IP (an honest sender with one
// empty account of eight would rank 1/8 below its peers for good).
func (m *IPSigner) Observe(o Observation) (updated bool) {
	ip := o.IP.canonical()
	c := o.claim()
	if c == 0 { // no fee given: the sender's usual claim, as Penalize does
		c = m.typicalClaim(ip)
	}
	paid := 0.0
	if o.ExecNanos > 0 {
		paid = c
		m.paid++
		m.learnBar(c)
	} else if !o.SenderFault && c < m.bar {
		// Outbid: verified, unpaid, claiming less than the blocks took.
		// Neutral: it says nothing of whether the sender pays.
		m.observations++
		m.events++
		return true
	}
	pred := float64(m.ipRate(ip) * c)
	if paid != 0 || !o.SenderFault || !m.payerExplains(ip, o.Signer) {
		m.outcome(ip, c, paid, 0)
	}
	m.signers.touch(o.Signer, m.events).add(c, paid, 0, pred, float64(m.p.Window))
	m.observations++
	m.events++
	return true
}

// learnBar moves the inclusion bar toward the BarQuantile of paid claims
// by one step for the paid claim c: down by BarStep when c is below it, up
// by BarStep·q/(1−q) otherwise, so it rests where a share q of paid claims
// is below it. The first paid claim sets it. BarQuantile 0 keeps it at 0.
func (m *IPSigner) learnBar(c float64) {
	q := m.p.BarQuantile
	switch {
	case !(q > 0):
	case !(m.bar > 0):
		m.bar = c
	case c < m.bar:
		m.bar = float64(m.bar * float64(1-m.p.BarStep))
	default:
		up := float64(float64(m.p.BarStep*q) / float64(1-q))
		m.bar = float64(m.bar * float64(1+up))
	}
}

// explainedBelow is the signer factor under which a payer with at least
// MinObservations outcomes explains its unpaid outcomes by itself (one
// half, the bar at which validity reaches 0 for failures): a payer that
// has paid less than half of what its IPs predicted.
const explainedBelow = 0.5

// payerExplains reports whether an unpaid outcome of payer s from the
// canonical ip is the payer's alone: s is known to go unpaid (a record
// of at least MinObservations outcomes and a factor below
// explainedBelow) while ip's own record, of at least MinObservations
// outcomes, shows at least explainedBelow of its claims paid — other
// payers from that IP are paid. A fresh payer (a sybil's new one per
// transaction) never explains, nor does the payer of an IP that is not
// mostly paid (a sender whose one payer is never paid sinks its IP to
// the unpaid floor, as before).
func (m *IPSigner) payerExplains(ip IP, s Signer) bool {
	least := float64(max(m.p.MinObservations, 1))
	r := m.signers.get(s)
	if r == nil || r.n < least || !(m.SignerFactor(s) < explainedBelow) {
		return false
	}
	ir := m.ips.get(ip)
	if ir == nil || ir.n < least {
		return false
	}
	rate, ok := ir.rate()
	return ok && rate >= explainedBelow
}

// Penalize records a failed outcome for ip (a failed sigverify or an
// unparsable packet): the packet claimed feePerCU and paid nothing. A
// claim of 0 or less means unknown (an unparsable packet): the failure
// then weighs the mean claim of the IP's record, else of the nearest
// level that has one, else 1. A 1 % failure rate at a sender's usual
// claims costs about 1 % of its factor; a sender whose packets all fail
// sinks to 0 within Window failures, faster when it claims more than it
// used to pay. It costs O(1) (a new IP evicts the least recently updated
// one) and does not allocate.
func (m *IPSigner) Penalize(ip IP, feePerCU float64) {
	ip = ip.canonical()
	c := feePerCU
	if !(c > 0) || !finite(c) {
		c = m.typicalClaim(ip)
	}
	m.outcome(ip, c, 0, c)
	m.penalties++
	m.events++
}

// typicalClaim is the mean claim of the first record along ip, /24, /16,
// newcomer that has one, else 1.
func (m *IPSigner) typicalClaim(ip IP) float64 {
	near, wide := ip.prefixes()
	for _, r := range [4]*rec{m.ips.get(ip), m.near.get(near), m.wide.get(wide), &m.newcomer} {
		if r != nil && r.claim > 0 {
			return r.claim
		}
	}
	return 1
}

// outcome folds one outcome (claim, paid, failed) into the records of the
// canonical key ip.
func (m *IPSigner) outcome(ip IP, claim, paid, fail float64) {
	w := float64(m.p.Window)
	if r := m.ips.get(ip); r == nil || r.n < float64(m.p.MinObservations) {
		m.newcomer.add(claim, paid, fail, 0, w)
	}
	near, wide := ip.prefixes()
	m.ips.touch(ip, m.events).add(claim, paid, fail, 0, w)
	m.near.touch(near, m.events).add(claim, paid, fail, 0, w)
	m.wide.touch(wide, m.events).add(claim, paid, fail, 0, w)
}

// SetParams replaces the model's parameters, for a model loaded from a
// file the operator now runs with other flags: tables are resized
// (keeping the most recently updated entries) and records averaging more
// than the new Window outcomes count as Window.
func (m *IPSigner) SetParams(p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	s := m.Snapshot()
	s.Params = p
	pend := m.pend
	*m = *fromSnapshot(s)
	m.pend = pend // not part of the snapshot; keyed by IP, whatever the params
	return nil
}

// Stats returns the model's sizes and counters.
func (m *IPSigner) Stats() Stats {
	return Stats{
		IPs:             m.ips.len(),
		NearPrefixes:    m.near.len(),
		WidePrefixes:    m.wide.len(),
		Signers:         m.signers.len(),
		UnknownIP:       max(m.p.MinScore, shrink(&m.newcomer, m.p.UnknownPrior, m.p.PriorWeight, float64(m.p.Window))),
		Bar:             m.bar,
		Observations:    m.observations,
		Paid:            m.paid,
		Penalties:       m.penalties,
		EvictedIPs:      m.ips.evicted,
		EvictedPrefixes: m.near.evicted + m.wide.evicted,
		EvictedSigners:  m.signers.evicted,
	}
}

// Clone returns an independent deep copy of m, for example to save it from
// another goroutine.
func (m *IPSigner) Clone() *IPSigner { return fromSnapshot(m.Snapshot()) }
