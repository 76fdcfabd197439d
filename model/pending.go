package model

import (
	"errors"
	"fmt"
	"time"

	"github.com/solqos/qos/internal/hashindex"
)

// PendingParams bound the pending claims a model keeps for scoring (see
// the package doc, "Pending claims"). They are not part of Params: pending
// claims are never saved, replayed or learned from.
type PendingParams struct {
	// TTL is how long a claim may wait for its outcome (1 s, a few slots):
	// one still pending then (its packet dropped by sigverify, its result
	// never reported or no longer matched) is taken back.
	TTL time.Duration
	// Max bounds the claims held (65 536, rounded up to a power of two):
	// a claim still pending when Max newer ones have been made is taken
	// back. 0 keeps no pending claims.
	Max int
}

// MaxPendingClaims is the largest PendingParams.Max.
const MaxPendingClaims = 1 << 22

// DefaultPendingParams returns the defaults.
func DefaultPendingParams() PendingParams {
	return PendingParams{TTL: time.Second, Max: 1 << 16}
}

// Validate reports the parameters out of range, or nil.
func (p PendingParams) Validate() error {
	var errs []error
	if p.TTL <= 0 || p.TTL > time.Hour {
		errs = append(errs, fmt.Errorf("model: pending claim TTL must be in (0, 1h], got %v", p.TTL))
	}
	if p.Max < 0 || p.Max > MaxPendingClaims {
		errs = append(errs, fmt.Errorf("model: max pending claims must be between 0 and %d, got %d", MaxPendingClaims, p.Max))
	}
	return errors.Join(errs...)
}

// Ticket names one pending claim, for Settle; 0 names none.
type Ticket uint32

// pendClaim is one claim of the ring: its canonical IP, claim, when it
// was made and its ticket (0 once settled or taken back).
type pendClaim struct {
	ip     IP
	claim  float64
	at     int64
	ticket Ticket
}

// pendSum is what one key's pending claims add up to.
type pendSum struct {
	n   float64 // claims
	sum float64 // their claims' sum
}

// pendSlot is one key of a pendTable; free slots are chained by next.
type pendSlot struct {
	key  IP
	s    pendSum
	next int32
}

// pendTable holds the pending sums of the keys (IPs, or prefixes of one
// level) that have pending claims. Its capacity is the ring's, so a key
// always finds a slot: each claim adds to one key per level. A key whose
// claims are all taken back leaves the table. Allocated once; pointer
// free.
type pendTable struct {
	idx   hashindex.Index // tag (hash >> 32) above slot+1
	slots []pendSlot
	free  int32 // first free slot, -1 none
	seed  uint64
}

func newPendTable(capacity int, seed uint64) pendTable {
	t := pendTable{idx: hashindex.New(capacity, 32), slots: make([]pendSlot, capacity), seed: seed}
	for i := range t.slots {
		t.slots[i].next = int32(i) + 1
	}
	t.slots[capacity-1].next = -1
	return t
}

// find returns k's index position and slot, or -1.
func (t *pendTable) find(k IP) (uint64, int32) {
	tag := k.hash(t.seed) >> 32
	for i := t.idx.Home(tag); ; i = t.idx.Next(i) {
		w := t.idx.At(i)
		if w == 0 {
			return i, -1
		}
		if w>>32 == tag {
			if s := int32(uint32(w)) - 1; t.slots[s].key == k {
				return i, s
			}
		}
	}
}

// get returns k's pending sum (zero when it has none).
func (t *pendTable) get(k IP) pendSum {
	if _, s := t.find(k); s >= 0 {
		return t.slots[s].s
	}
	return pendSum{}
}

// add adds one claim to k. REQUIRES: a free slot (the ring holds no more
// claims than the table has slots).
func (t *pendTable) add(k IP, claim float64) {
	_, s := t.find(k)
	if s < 0 {
		s = t.free
		t.free = t.slots[s].next
		t.slots[s] = pendSlot{key: k, next: -1}
		t.idx.Insert(k.hash(t.seed)>>32<<32 | uint64(s+1))
	}
	t.slots[s].s.n++
	t.slots[s].s.sum += claim
}

// take takes one claim back from k; k leaves the table with its last.
func (t *pendTable) take(k IP, claim float64) {
	i, s := t.find(k)
	if s < 0 {
		return
	}
	e := &t.slots[s]
	if e.s.n <= 1 {
		t.idx.Delete(i)
		*e = pendSlot{next: t.free}
		t.free = s
		return
	}
	e.s.n--
	e.s.sum = max(0, e.s.sum-claim)
}

// pending is a model's set of pending claims: a ring of claims in the
// order they were made, addressed by ticket (ticket & mask), and their
// sums per IP, /24 (/48) and /16 (/32).
type pending struct {
	p                PendingParams
	ring             []pendClaim
	mask             uint32
	next             Ticket // the next claim's ticket
	oldest           Ticket // no live claim is older
	live             int
	ips, near, wide  pendTable
	expired, dropped uint64
}

func newPending(p PendingParams, seed uint64) *pending {
	size := 1
	for size < p.Max {
		size <<= 1
	}
	return &pending{
		p: p, ring: make([]pendClaim, size), mask: uint32(size - 1), next: 1, oldest: 1,
		ips: newPendTable(size, seed^5), near: newPendTable(size, seed^6), wide: newPendTable(size, seed^7),
	}
}

// at returns the claim of ticket t when it is still pending, else nil.
func (q *pending) at(t Ticket) *pendClaim {
	c := &q.ring[uint32(t)&q.mask]
	if t == 0 || c.ticket != t {
		return nil
	}
	return c
}

// release takes claim c back from the sums.
func (q *pending) release(c *pendClaim) {
	near, wide := c.ip.prefixes()
	q.ips.take(c.ip, c.claim)
	q.near.take(near, c.claim)
	q.wide.take(wide, c.claim)
	c.ticket = 0
	q.live--
}

// TrackPending makes the model keep pending claims with p (a model keeps
// none until then), allocating their ring and tables; p.Max 0 stops
// keeping them. Claims held before are dropped.
func (m *IPSigner) TrackPending(p PendingParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	m.pend = nil
	if p.Max > 0 {
		m.pend = newPending(p, m.ips.seed)
	}
	return nil
}

// Pend records that a packet from ip claiming feePerCU (≤ 0: unknown,
// the sender's usual claim, as Penalize counts it) was handed on at now
// (the caller's clock, ns) and its outcome is not known yet: until Settle,
// ExpirePending or a newer claim beyond PendingParams.Max takes it back,
// IPFactor counts it among the IP's claims, at the rate the level above
// predicts and as not failed (see the package doc). It changes nothing
// that is learned, saved or replayed, costs O(1), does not allocate, and
// returns the claim's ticket (0 when the model keeps no pending claims).
func (m *IPSigner) Pend(ip IP, feePerCU float64, now int64) Ticket {
	q := m.pend
	if q == nil {
		return 0
	}
	ip = ip.canonical()
	c := feePerCU
	if !(c > 0) || !finite(c) {
		c = m.typicalClaim(ip)
	}
	t := q.next
	q.next++
	if q.next == 0 { // 0 names no claim
		q.next = 1
	}
	if old := &q.ring[uint32(t)&q.mask]; old.ticket != 0 { // full: the oldest goes
		q.release(old)
		q.dropped++
	}
	near, wide := ip.prefixes()
	q.ips.add(ip, c)
	q.near.add(near, c)
	q.wide.add(wide, c)
	q.ring[uint32(t)&q.mask] = pendClaim{ip: ip, claim: c, at: now, ticket: t}
	q.live++
	return t
}

// Settle takes back the pending claim of ticket t, whose outcome has come
// (the caller then calls Observe or Penalize). A ticket already settled,
// taken back or 0 is ignored. O(1), no allocation.
func (m *IPSigner) Settle(t Ticket) {
	if m.pend == nil {
		return
	}
	if c := m.pend.at(t); c != nil {
		m.pend.release(c)
	}
}

// expireScan bounds the ring entries one ExpirePending call looks at, so
// a long run of settled claims never stalls the caller (the rest waits
// for the next call).
const expireScan = 1024

// ExpirePending takes back the claims made more than PendingParams.TTL
// before now, oldest first, and returns how many. It looks at no more than
// a bounded number of ring entries per call and does not allocate.
func (m *IPSigner) ExpirePending(now int64) int {
	q := m.pend
	if q == nil || q.live == 0 {
		return 0
	}
	ttl := int64(q.p.TTL)
	n := 0
	for range expireScan {
		if q.oldest == q.next {
			break
		}
		c := q.at(q.oldest)
		if c != nil {
			if now-c.at <= ttl {
				break
			}
			q.release(c)
			q.expired++
			n++
		}
		q.oldest++
		if q.oldest == 0 {
			q.oldest = 1
		}
	}
	return n
}

// PendingStats describes the pending claims.
type PendingStats struct {
	Live    int    // claims pending now
	Expired uint64 // taken back after TTL without an outcome
	Dropped uint64 // taken back early to make room (more than Max at once)
}

// PendingStats returns the pending claims' counters (zero when the model
// keeps none).
func (m *IPSigner) PendingStats() PendingStats {
	if m.pend == nil {
		return PendingStats{}
	}
	return PendingStats{Live: m.pend.live, Expired: m.pend.expired, Dropped: m.pend.dropped}
}

// sums returns the pending sums of the canonical ip, its /24 (/48) and
// /16 (/32), and whether there are any. A claim counts at all three
// levels, so a /16 without claims has none below it and one lookup
// settles most IPs.
func (q *pending) sums(ip, near, wide IP) (ps [3]pendSum, ok bool) {
	if ps[2] = q.wide.get(wide); !(ps[2].n > 0) {
		return ps, false
	}
	if ps[1] = q.near.get(near); ps[1].n > 0 {
		ps[0] = q.ips.get(ip)
	}
	return ps, true
}

// nonFailed returns r without its failed claims: the outcomes that did
// not fail (their claims, what they paid, how many), and no evidence (a
// zero record) when all failed.
func nonFailed(r rec) rec {
	c := r.claim - r.fail
	if !(c > r.claim*1e-9) {
		return rec{}
	}
	return rec{claim: c, paid: r.paid, n: r.n * (c / r.claim)}
}

// withPending returns r with the pending claims s folded in as outcomes
// not yet known: each claiming its claim, paid at prior, not failed. They
// fill at most the room left in r's window (Window − n outcomes): a
// record with a full window stands on its settled outcomes alone, so
// pending claims only keep a young record from being judged on the
// outcomes that come first (failed signatures, within milliseconds)
// before those that come at the end of a slot (paid or not).
func withPending(r rec, s pendSum, prior, w float64) rec {
	room := w - r.n
	if !(s.n > 0) || !(room > 0) {
		return r
	}
	k := min(s.n, room)
	claims := s.sum * (k / s.n)
	n := r.n + k
	return rec{
		claim: (r.claim*r.n + claims) / n,
		paid:  (r.paid*r.n + prior*claims) / n,
		fail:  r.fail * r.n / n,
		n:     n,
	}
}
