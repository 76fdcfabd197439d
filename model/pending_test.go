package model

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// pendingModel returns a model with default params keeping pending claims
// with pp.
func pendingModel(t testing.TB, p Params, pp PendingParams) *IPSigner {
	t.Helper()
	m := New(p)
	if err := m.TrackPending(pp); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPendingShieldsNAT: a fresh NAT address whose honest users' packets
// are at sigverify (pending) is not sunk by the failures of one bad host
// behind it, which come back within milliseconds while the honest
// outcomes come at the end of the slot; without pending claims the same
// failures sink it to MinScore and the sender gate refuses it. Once the
// honest outcomes arrive (paid) the settled record keeps it up on its own.
func TestPendingShieldsNAT(t *testing.T) {
	p := DefaultParams()
	nat := ip4(203, 0, 113, 9)
	with := pendingModel(t, p, DefaultPendingParams())
	without := New(p)

	const honest, bad = 150, 12 // one slot's packets sent: ~7 % bad, claiming more
	tickets := make([]Ticket, 0, honest)
	var now int64
	for i := range honest {
		now += int64(time.Millisecond)
		tickets = append(tickets, with.Pend(nat, 1_000_000, now))
		if i%(honest/bad) == 0 { // a failure back within the millisecond
			tb := with.Pend(nat, 2_000_000, now)
			with.Settle(tb)
			with.Penalize(nat, 2_000_000)
			without.Penalize(nat, 2_000_000)
		}
	}
	if f := without.IPFactor(nat); f != p.MinScore {
		t.Fatalf("without pending claims: NAT factor %v after %d early failures, want MinScore (the failure this guards against)", f, bad)
	}
	if f := with.IPFactor(nat); f < 0.5 {
		t.Fatalf("with %d pending honest claims: NAT factor %v after %d early failures, want ≥ 0.5", honest, f, bad)
	}
	// The slot closes: the honest transactions were paid.
	for i, tk := range tickets {
		with.Settle(tk)
		with.Observe(tx(nat, signer(uint32(i%12)), 1_000_000, true))
	}
	if st := with.PendingStats(); st.Live != 0 {
		t.Fatalf("%d claims still pending after every outcome came", st.Live)
	}
	if f := with.IPFactor(nat); f < 0.5 {
		t.Fatalf("after the honest outcomes: NAT factor %v, want ≥ 0.5", f)
	}
}

// TestPendingBadSenderGatedAsBefore: a sender whose every packet fails,
// each failure coming back before the next packet is sent (a pending
// claim settled within milliseconds), scores exactly as in a model that
// keeps no pending claims after every failure: it reaches MinScore (the
// gate) after the same number of failures.
func TestPendingBadSenderGatedAsBefore(t *testing.T) {
	for _, name := range []string{"fresh IP", "sybil of a flooded /16"} {
		t.Run(name, func(t *testing.T) {
			p := DefaultParams()
			with := pendingModel(t, p, DefaultPendingParams())
			without := New(p)
			gatedWith, gatedWithout := -1, -1
			for i := range 50 {
				ip := ip4(198, 51, 100, 30)
				if name != "fresh IP" {
					ip = ip4(100, 64, byte(i>>8), byte(i))
				}
				tk := with.Pend(ip, 20_000_000, int64(i))
				with.Settle(tk)
				with.Penalize(ip, 20_000_000)
				without.Penalize(ip, 20_000_000)
				fw, fo := with.IPFactor(ip), without.IPFactor(ip)
				if fw != fo {
					t.Fatalf("failure %d: factor %v with pending claims, %v without", i+1, fw, fo)
				}
				if fw == p.MinScore && gatedWith < 0 {
					gatedWith = i + 1
				}
				if fo == p.MinScore && gatedWithout < 0 {
					gatedWithout = i + 1
				}
			}
			if gatedWith < 0 || gatedWith != gatedWithout {
				t.Fatalf("gated after %d failures with pending claims, %d without", gatedWith, gatedWithout)
			}
		})
	}
}

// TestPendingFullWindowUnmoved: pending claims fill at most the room left
// in a record's window, so a sender with a full window of unpaid outcomes
// (valid transactions that never pay) gains nothing by keeping many
// packets at sigverify: its factor stays at the unpaid floor.
func TestPendingFullWindowUnmoved(t *testing.T) {
	p := DefaultParams()
	m := pendingModel(t, p, DefaultPendingParams())
	ip := ip4(198, 51, 100, 40)
	for i := range p.Window {
		m.Observe(tx(ip, signer(uint32(i)), 900_000, false))
	}
	before := m.IPFactor(ip)
	for i := range 5000 {
		m.Pend(ip, 900_000, int64(i))
	}
	if after := m.IPFactor(ip); after != before || after != p.UnpaidFloor {
		t.Fatalf("unpaid sender with a full window: factor %v before, %v with 5 000 pending claims; want both the unpaid floor %v", before, after, p.UnpaidFloor)
	}
}

// TestPendingNotLearned: pending claims change what IPFactor says but
// nothing that is learned, saved or replayed: a model fed the same
// outcomes with claims pended, settled, expired and dropped in between
// saves the same bytes as one fed the outcomes alone, and once no claim
// is pending it scores every key bit for bit the same.
func TestPendingNotLearned(t *testing.T) {
	p := smallParams()
	steps := sequence(11, 20_000)
	plain := New(p)
	run(plain, steps)
	m := pendingModel(t, p, PendingParams{TTL: 50, Max: 256})
	r := rand.New(rand.NewPCG(3, 4))
	var open []Ticket
	for i, s := range steps {
		now := int64(i)
		open = append(open, m.Pend(s.o.IP, float64(r.IntN(5000)), now))
		if len(open) > 0 && r.IntN(3) > 0 { // settle one at random; others expire or drop
			j := r.IntN(len(open))
			m.Settle(open[j])
			open[j] = open[len(open)-1]
			open = open[:len(open)-1]
		}
		m.ExpirePending(now)
		if s.penalty {
			m.Penalize(s.o.IP, s.claim)
		} else {
			m.Observe(s.o)
		}
	}
	if d := Diff(plain, m, 0); d != nil {
		t.Fatalf("pending claims changed the learned model: %v", d)
	}
	a, _ := plain.AppendBinary(nil)
	b, _ := m.AppendBinary(nil)
	if !bytes.Equal(a, b) {
		t.Fatal("pending claims changed the saved file")
	}
	st := m.PendingStats()
	if st.Live == 0 || st.Expired == 0 {
		t.Fatalf("test does not exercise expiry: %+v", st)
	}
	for _, tk := range open {
		m.Settle(tk)
	}
	m.ExpirePending(int64(len(steps)) + 1000)
	if st := m.PendingStats(); st.Live != 0 {
		t.Fatalf("%d claims pending after settling and expiring all", st.Live)
	}
	for _, s := range steps[:2000] {
		if a, b := plain.Forward(s.o.IP, s.o.Signer), m.Forward(s.o.IP, s.o.Signer); a != b {
			t.Fatalf("%v: forward %v with no claim pending, %v in a model that never kept any", s.o.IP, b, a)
		}
	}
}

// TestPendingLifecycle: tickets settle once, stale and zero tickets are
// ignored, claims expire after TTL (not before), a claim beyond Max takes
// back the oldest, and a model that keeps none hands out ticket 0.
func TestPendingLifecycle(t *testing.T) {
	p := DefaultParams()
	if tk := New(p).Pend(ip4(1, 2, 3, 4), 10, 0); tk != 0 {
		t.Fatalf("model keeping no pending claims gave ticket %d", tk)
	}
	m := pendingModel(t, p, PendingParams{TTL: 100, Max: 4})
	ip := ip4(10, 0, 0, 1)
	a := m.Pend(ip, 10, 0)
	b := m.Pend(ip4(10, 0, 0, 2), 10, 10)
	if a == 0 || b == 0 || a == b {
		t.Fatalf("tickets %d, %d", a, b)
	}
	m.Settle(a)
	m.Settle(a)
	m.Settle(0)
	if st := m.PendingStats(); st.Live != 1 {
		t.Fatalf("live %d after settling one of two (twice, and ticket 0), want 1", st.Live)
	}
	if n := m.ExpirePending(110); n != 0 {
		t.Fatalf("expired %d at exactly TTL, want 0", n)
	}
	if n := m.ExpirePending(111); n != 1 {
		t.Fatalf("expired %d after TTL, want 1", n)
	}
	m.Settle(b) // already taken back: ignored
	var ts []Ticket
	for i := range 6 {
		ts = append(ts, m.Pend(ip, 10, 200+int64(i)))
	}
	st := m.PendingStats()
	if st.Live != 4 || st.Dropped != 2 || st.Expired != 1 {
		t.Fatalf("after 6 claims into room for 4: %+v, want 4 live, 2 dropped, 1 expired", st)
	}
	m.Settle(ts[0]) // dropped already: ignored
	m.Settle(ts[5])
	if st := m.PendingStats(); st.Live != 3 {
		t.Fatalf("live %d, want 3", st.Live)
	}
	for _, pp := range []PendingParams{{TTL: 0, Max: 1}, {TTL: time.Second, Max: -1}, {TTL: time.Second, Max: MaxPendingClaims + 1}} {
		if pp.Validate() == nil {
			t.Errorf("%+v validated", pp)
		}
	}
}

// TestPendingTablesAgainstMap: the per-level sums follow a plain map
// through random claims, settlements, expiries and drops in a small ring
// whose tables collide and fill.
func TestPendingTablesAgainstMap(t *testing.T) {
	m := pendingModel(t, DefaultParams(), PendingParams{TTL: 40, Max: 32})
	r := rand.New(rand.NewPCG(9, 9))
	type claim struct {
		ip    IP
		claim float64
		at    int64
	}
	live := map[Ticket]claim{}
	var order []Ticket
	for step := range 100_000 {
		now := int64(step)
		switch r.IntN(3) {
		case 0, 1:
			ip := ip4(10, byte(r.IntN(3)), byte(r.IntN(3)), byte(r.IntN(4)))
			c := float64(1 + r.IntN(100))
			tk := m.Pend(ip, c, now)
			live[tk] = claim{ip, c, now}
			order = append(order, tk)
		default:
			if len(order) > 0 {
				tk := order[r.IntN(len(order))]
				m.Settle(tk)
				delete(live, tk)
			}
		}
		m.ExpirePending(now)
		// What the model must hold: claims among the latest Max (32)
		// made, none older than TTL.
		kept := order[:0]
		for _, tk := range order {
			if c, ok := live[tk]; ok && now-c.at <= 40 && m.pend.next-tk <= 32 {
				kept = append(kept, tk)
			} else {
				delete(live, tk)
			}
		}
		order = kept
		if step%97 != 0 {
			continue
		}
		want := map[[2]IP]pendSum{}
		for _, c := range live {
			near, wide := c.ip.prefixes()
			for l, k := range []IP{c.ip, near, wide} {
				s := want[[2]IP{{byte(l)}, k}]
				s.n++
				s.sum += c.claim
				want[[2]IP{{byte(l)}, k}] = s
			}
		}
		q := m.pend
		if q.live != len(live) {
			t.Fatalf("step %d: %d live, want %d", step, q.live, len(live))
		}
		for k, w := range want {
			tab := []*pendTable{&q.ips, &q.near, &q.wide}[k[0][0]]
			if g := tab.get(k[1]); g.n != w.n || g.sum-w.sum > 1e-9 || w.sum-g.sum > 1e-9 {
				t.Fatalf("step %d: level %d key %v: %+v, want %+v", step, k[0][0], k[1], g, w)
			}
		}
	}
}
