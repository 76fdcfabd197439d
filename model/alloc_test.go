package model

import "testing"

// TestModelAllocsNothing: Forward (the per-packet path), Observe and
// Penalize allocate nothing, also when every call is a new key that
// evicts another (a flood at steady state).
func TestModelAllocsNothing(t *testing.T) {
	p := smallParams()
	m := filled(t, p, 4, 20_000)
	known, sg := m.Snapshot().IPs[0].IP, m.Snapshot().Signers[0].Signer
	var sink float64
	i := 0
	f := func(name string, fn func()) {
		t.Helper()
		if a := testing.AllocsPerRun(2000, fn); a != 0 {
			t.Errorf("%s: %v allocations per call", name, a)
		}
	}
	f("Forward known", func() { sink += m.Forward(known, sg) })
	f("Forward unknown", func() { i++; sink += m.Forward(ip4(250, 1, byte(i>>8), byte(i)), signer(uint32(1<<30+i))) })
	f("Penalize known", func() { m.Penalize(known, 1000) })
	f("Penalize new (evicts)", func() { i++; m.Penalize(ip4(100, 90, byte(i>>8), byte(i)), 0) })
	f("Observe known", func() { m.Observe(tx(known, sg, 1000, true)) })
	f("Observe new (evicts)", func() { i++; m.Observe(tx(ip4(172, 20, byte(i>>8), byte(i)), signer(uint32(1<<29+i)), 1000, false)) })

	// Pending claims: a claim per call from fresh IPs into a full ring
	// (each takes back the oldest), settled, expired, and Forward while
	// claims are pending.
	if err := m.TrackPending(PendingParams{TTL: 1000, Max: 256}); err != nil {
		t.Fatal(err)
	}
	var last Ticket
	f("Pend new (drops oldest)", func() { i++; last = m.Pend(ip4(100, 91, byte(i>>8), byte(i)), 1000, int64(i)) })
	f("Pend+Settle known", func() { i++; m.Settle(m.Pend(known, 1000, int64(i))) })
	f("Forward known, claims pending", func() { sink += m.Forward(known, sg) })
	f("Forward unknown, claims pending", func() { i++; sink += m.Forward(ip4(100, 91, byte(i>>8), byte(i)), sg) })
	f("ExpirePending", func() { i++; m.ExpirePending(int64(i)); m.Pend(known, 1000, int64(i)) })
	m.Settle(last)
	_ = sink
}
