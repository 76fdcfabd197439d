package sidecar

import (
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

// TestPendingClaims: every packet sent to sigverify becomes a pending
// claim of the model, settled by its sigverify failure or its scheduler
// result, or taken back after the TTL; while the honest packets of a NAT
// address are pending, the failures of a bad host behind it (other
// packets, back within milliseconds) do not sink it. Without pending
// claims (Pending.Max 0) the same failures sink it to MinScore, which the
// sender gate refuses.
func TestPendingClaims(t *testing.T) {
	nat := netip.MustParseAddr("203.0.113.9")
	for _, tc := range []struct {
		name    string
		pending int
	}{{"pending claims", 1 << 10}, {"no pending claims", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Pending.Max = tc.pending })
			m := h.s.model
			var mono int64
			var sent []channels.Packet
			for i := range 40 {
				good := tx{payer: payerN(i % 4), sig: sigN(i + 1), limit: 10_000, price: 1000, nonce: uint64(i)}
				p := good.packet(t, nat)
				h.tpu.Push(&p)
				sent = append(sent, p)
			}
			h.tpu.Sync()
			h.s.step(mono, 1)
			if got := len(h.sendAll(&mono)); got != len(sent) {
				t.Fatalf("sent %d of %d", got, len(sent))
			}
			wantLive := 0
			if tc.pending > 0 {
				wantLive = len(sent)
			}
			if st := m.PendingStats(); st.Live != wantLive {
				t.Fatalf("%d claims pending after sending %d, want %d", st.Live, len(sent), wantLive)
			}
			for _, p := range sent {
				part, ok := h.s.partial.Get(score.PacketHash(0x5eed, &p))
				if !ok || (part.Ticket != 0) != (tc.pending > 0) {
					t.Fatalf("partial of a sent packet: found %v, ticket %d", ok, part.Ticket)
				}
			}

			// A bad host behind the NAT: 8 failures of packets qos never saw.
			for i := range 8 {
				bad := tx{payer: payerN(99), sig: sigN(1000 + i), limit: 10_000, price: 2000, nonce: uint64(1000 + i)}
				p := bad.packet(t, nat)
				p.SetFlags(channels.FlagDiscard)
				h.sig.Push(&p)
			}
			h.sig.Sync()
			mono += int64(time.Millisecond)
			h.s.step(mono, 2)
			f := m.IPFactor(model.IPOf(nat))
			if tc.pending == 0 {
				if f != m.MinIPFactor() {
					t.Fatalf("no pending claims: NAT factor %v after 8 early failures, want MinScore", f)
				}
				return
			}
			// The failures claim about twice the honest packets' fee per
			// CU (their claim unknown: 1 lamport per CU, the model's default).
			if f < 0.3 {
				t.Fatalf("NAT factor %v after 8 failures while 40 honest packets are pending, want ≥ 0.3", f)
			}

			// One sent packet fails sigverify, the rest are scheduled.
			failed := sent[0]
			failed.SetFlags(channels.FlagDiscard)
			h.sig.Push(&failed)
			h.sig.Sync()
			for _, p := range sent[1:] {
				var r channels.RemainingMeta
				r.Set(score.PacketHash(0x5eed, &p), 5000)
				h.sch.Push(&r)
			}
			h.sch.Sync()
			mono += int64(time.Millisecond)
			h.s.step(mono, 3)
			if st := m.PendingStats(); st.Live != 0 || st.Expired != 0 {
				t.Fatalf("after every outcome: %+v, want none live or expired", st)
			}

			// A packet whose outcome never comes is taken back after the TTL.
			late := tx{payer: payerN(1), sig: sigN(5000), limit: 10_000, price: 1000, nonce: 5000}
			p := late.packet(t, nat)
			h.tpu.Push(&p)
			h.tpu.Sync()
			h.s.step(mono, 4)
			h.sendAll(&mono)
			if st := m.PendingStats(); st.Live != 1 {
				t.Fatalf("%d pending, want 1", st.Live)
			}
			h.s.step(mono+int64(h.s.cfg.Pending.TTL), 5)
			if st := m.PendingStats(); st.Live != 1 {
				t.Fatalf("taken back at exactly the TTL: %+v", st)
			}
			h.s.step(mono+int64(h.s.cfg.Pending.TTL)+1, 6)
			if st := m.PendingStats(); st.Live != 0 || st.Expired != 1 {
				t.Fatalf("after the TTL: %+v, want 0 live, 1 expired", st)
			}
		})
	}
}
