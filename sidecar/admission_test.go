package sidecar

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

// v1Packet builds a v1 transaction (SIMD-0385) record: payer, one
// program, a priority fee in lamports and a compute-unit limit in the
// config, one instruction with nonce as data, and sig closing the
// transaction.
func v1Packet(tb testing.TB, payer [32]byte, sig [64]byte, prio uint64, limit uint32, nonce uint64, addr netip.Addr) channels.Packet {
	tb.Helper()
	b := []byte{0x81, 1, 0, 1}
	b = binary.LittleEndian.AppendUint32(b, 0b111) // priority fee, limit
	b = append(b, make([]byte, 32)...)             // lifetime
	b = append(b, 1, 2)                            // 1 instruction, 2 addresses
	b = append(b, payer[:]...)
	prog := [32]byte{9, 9, 9}
	b = append(b, prog[:]...)
	b = binary.LittleEndian.AppendUint64(b, prio)
	b = binary.LittleEndian.AppendUint32(b, limit)
	b = append(b, 1, 0, 8, 0) // program 1, no accounts, 8 data bytes
	b = binary.LittleEndian.AppendUint64(b, nonce)
	b = append(b, sig[:]...)
	var p channels.Packet
	if !p.SetData(b) {
		tb.Fatal("transaction too large")
	}
	p.SetAddr(addr)
	return p
}

// TestRefusalsCarryNoPenalty: a well-formed transaction Agave refuses
// (here a v1 transaction with v1 switched off, and one locking too many
// accounts for the limit) is counted under its own reason and leaves its
// sender's IP alone; only bytes that are no transaction penalise.
func TestRefusalsCarryNoPenalty(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Limits = score.Limits{NoTxV1: true, AccountLockLimit: 2} })
	v1 := v1Packet(t, payerN(1), sigN(1), 1000, 10_000, 1, ipN(70))
	h.tpu.Push(&v1)
	locks := (&tx{payer: payerN(2), sig: sigN(2), limit: 10_000, price: 5, nonce: 2}).packet(t, ipN(71)) // 3 keys > 2
	h.tpu.Push(&locks)
	garbage := v1
	garbage.SetData(v1.Data()[:60])
	garbage.SetAddr(ipN(72))
	h.tpu.Push(&garbage)
	h.tpu.Sync()
	h.s.step(0, time.Now().UnixNano())

	c := &h.s.snap
	if c.Admission.Rejects[score.RejectV1Disabled] != 1 || c.Admission.Rejects[score.RejectTooManyAccountLocks] != 1 ||
		c.Admission.Rejects[score.RejectAccountKeys] != 1 || c.Counters[ParsePenalties] != 1 || c.Admission.Events[admit.EventAdmitted] != 0 {
		t.Fatalf("v1 off %d, locks %d, garbage %d, penalties %d, admitted %d; want 1, 1, 1, 1, 0",
			c.Admission.Rejects[score.RejectV1Disabled], c.Admission.Rejects[score.RejectTooManyAccountLocks],
			c.Admission.Rejects[score.RejectAccountKeys], c.Counters[ParsePenalties], c.Admission.Events[admit.EventAdmitted])
	}
	for _, ip := range []int{70, 71} {
		if _, known := h.s.model.IPScore(model.IPOf(ipN(ip))); known {
			t.Errorf("refused sender %v was penalised", ipN(ip))
		}
	}
	// One parse failure sinks the garbage sender below what a sender the
	// model has no record of gets (the refused senders' factor).
	refused, _ := h.s.model.IPScore(model.IPOf(ipN(70)))
	if s, ok := h.s.model.IPScore(model.IPOf(ipN(72))); !ok || s >= refused {
		t.Errorf("garbage sender's score = %v (known %v), want below a refused sender's %v", s, ok, refused)
	}
}

// TestV1Admitted: with v1 on, a v1 transaction is admitted, priced from
// its config, and its first signature (after the message) is the one the
// recently-confirmed check compares.
func TestV1Admitted(t *testing.T) {
	h := newHarness(t, nil)
	fresh := v1Packet(t, payerN(1), sigN(1), 1000, 10_000, 1, ipN(1))
	seen := v1Packet(t, payerN(2), sigN(2), 1000, 10_000, 2, ipN(2))
	sig := channels.Signature(sigN(2))
	h.status.Push(&sig)
	h.status.Sync()
	h.tpu.Push(&fresh)
	h.tpu.Push(&seen)
	h.tpu.Sync()
	h.s.step(0, time.Now().UnixNano())
	c := &h.s.snap.Admission.Events
	if c[admit.EventAdmitted] != 1 || c[admit.EventRecentlyConfirmed] != 1 {
		t.Fatalf("admitted %d, recently confirmed %d; want 1, 1", c[admit.EventAdmitted], c[admit.EventRecentlyConfirmed])
	}
	var mono int64
	out := h.sendAll(&mono)
	if len(out) != 1 || out[0] != fresh {
		t.Fatalf("sent %d packets, want the fresh v1 one", len(out))
	}
}
