package score

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/solqos/qos/channels"
)

// packetOf returns a record holding data from 10.1.2.3:8001.
func packetOf(t testing.TB, data []byte) *channels.Packet {
	t.Helper()
	p := new(channels.Packet)
	// Stale bytes beyond size, as in the validator's buffers.
	for i := range p[:channels.PacketDataSize] {
		p[i] = 0x5A
	}
	if !p.SetData(data) {
		t.Fatalf("SetData(%d bytes) refused", len(data))
	}
	p.SetAddr(netip.MustParseAddr("10.1.2.3"))
	p.SetPort(8001)
	return p
}

// refHash is PacketHash written the obvious way: build the preimage, hash it.
func refHash(seed uint64, data []byte, addr []byte) uint64 {
	pre := append([]byte{}, data...)
	pre = binary.LittleEndian.AppendUint64(pre, uint64(len(data)))
	pre = append(pre, addr...)
	d := xxhash.NewWithSeed(seed)
	_, _ = d.Write(pre)
	return d.Sum64()
}

func TestPacketHash(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 134, 500, 1231, 1232} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + n)
		}
		p := packetOf(t, data)
		for _, seed := range []uint64{0, 1, 0xdeadbeefcafebabe} {
			if got, want := PacketHash(seed, p), refHash(seed, data, []byte{10, 1, 2, 3}); got != want {
				t.Fatalf("n=%d seed=%x: %x, want %x", n, seed, got, want)
			}
		}
		// IPv6: 16 address bytes.
		a6 := netip.MustParseAddr("2001:db8::1")
		p.SetAddr(a6)
		b6 := a6.As16()
		if got, want := PacketHash(7, p), refHash(7, data, b6[:]); got != want {
			t.Fatalf("n=%d ipv6: %x, want %x", n, got, want)
		}
	}
	// What the hash covers: data in use, size, address — not port, flags or stale bytes.
	data := fixLegacy.bytes()
	p := packetOf(t, data)
	h := PacketHash(9, p)
	q := *p
	q.SetPort(1)
	q.SetFlags(channels.FlagForwarded)
	q[len(data)] ^= 0xff
	if PacketHash(9, &q) != h {
		t.Fatal("port, flags or stale bytes changed the hash")
	}
	for _, mut := range []func(*channels.Packet){
		func(x *channels.Packet) { x[0] ^= 1 },
		func(x *channels.Packet) { x.SetAddr(netip.MustParseAddr("10.1.2.4")) },
		func(x *channels.Packet) { x.SetSize(x.Size() - 1) },
	} {
		q := *p
		mut(&q)
		if PacketHash(9, &q) == h {
			t.Fatal("mutation left the hash unchanged")
		}
	}
	if PacketHash(10, p) == h {
		t.Fatal("seed ignored")
	}
	// Malformed records do not panic.
	q = *p
	q.SetSize(math.MaxUint64)
	q[1240] = 7
	_ = PacketHash(1, &q)
}

func TestEvaluateRecord(t *testing.T) {
	data := fixLegacy.bytes()
	f := func(name string, mut func(*channels.Packet), want Reject) {
		t.Helper()
		p := packetOf(t, data)
		mut(p)
		e := NewEvaluator(3)
		info, r := e.Evaluate(p)
		if r != want {
			t.Fatalf("%s: %v, want %v", name, r, want)
		}
		if r != OK && info != (Info{}) {
			t.Fatalf("%s: rejected with info %+v", name, info)
		}
		if r == OK && info.Hash != PacketHash(3, p) {
			t.Fatalf("%s: hash", name)
		}
	}
	f("ok", func(*channels.Packet) {}, OK)
	// Case 11 of spec §6: size 1233, DISCARD, address tag. IPv6 is
	// accepted (docs/design.md), unlike the reference.
	f("size 1233", func(p *channels.Packet) { p.SetSize(1233) }, RejectSize)
	f("size huge", func(p *channels.Packet) { p.SetSize(math.MaxUint64) }, RejectSize)
	f("discard", func(p *channels.Packet) { p.SetFlags(channels.FlagDiscard | channels.FlagForwarded) }, RejectDiscard)
	f("other flags", func(p *channels.Packet) { p.SetFlags(0xff &^ channels.FlagDiscard) }, OK)
	f("ipv6", func(p *channels.Packet) { p.SetAddr(netip.MustParseAddr("2001:db8::7")) }, OK)
	f("tag 2", func(p *channels.Packet) { p[1240] = 2 }, RejectAddr)
	f("tag 255", func(p *channels.Packet) { p[1240] = 255 }, RejectAddr)
	f("size checked before tag", func(p *channels.Packet) { p.SetSize(2000); p[1240] = 9 }, RejectSize)
	f("tag checked before discard", func(p *channels.Packet) { p[1240] = 9; p.SetFlags(channels.FlagDiscard) }, RejectAddr)
	f("size shortened", func(p *channels.Packet) { p.SetSize(p.Size() - 1) }, RejectInstructions)
	f("size lengthened", func(p *channels.Packet) { p.SetSize(p.Size() + 1) }, RejectTrailing)
	f("size zero", func(p *channels.Packet) { p.SetSize(0) }, RejectSignatures)
}

func TestEvaluateInfo(t *testing.T) {
	tx := cbTx(cb(cbLimit(50_000)), cb(cbPrice(2_000_000)), other())
	data := tx.bytes()
	p := packetOf(t, data)
	e := &Evaluator{Seed: 42} // zero Fees: defaults
	info, r := e.Evaluate(p)
	if r != OK {
		t.Fatal(r)
	}
	if info.Payer != tx.key(0) {
		t.Fatalf("payer %x", info.Payer)
	}
	want := Budget{Fee: 5000 + 100_000, PrioFee: 100_000, CUs: 50_000, CUPrice: 2_000_000, Signatures: 1, SigFee: 5000,
		HeapBytes: 32 << 10, LoadedAccountsBytes: 64 << 20}
	if info.Budget != want {
		t.Fatalf("budget %+v", info.Budget)
	}
	if info.Hash != refHash(42, data, []byte{10, 1, 2, 3}) {
		t.Fatal("hash")
	}
	if s := e.View().Signature(data, 0); string(s) != string(data[1:65]) {
		t.Fatal("signature 0 is not data[1:65]")
	}
	// Explicit fees are used as given.
	e.Fees = DefaultFeeParams()
	e.Fees.LamportsPerSignature = 1
	info, _ = e.Evaluate(p)
	if info.Budget.Fee != 1+100_000 {
		t.Fatalf("fee %d", info.Budget.Fee)
	}
}

func TestScore(t *testing.T) {
	f := func(model float64, fee, cus uint64, want float64) {
		t.Helper()
		if got := Score(model, fee, cus); got != want {
			t.Fatalf("Score(%v, %d, %d) = %v, want %v", model, fee, cus, got, want)
		}
	}
	f(1, 5000, 200_000, 0.025)
	// Fewer than MinScoreCUs (3 000) count as 3 000: an empty transaction
	// (0 CUs) ranks with a plain transfer of the same fee (3 000 CUs,
	// SIMD-0170), not at the top.
	f(2, 6000, 0, 4)
	f(2, 6000, 3000, 4)
	f(0.5, 1000, 1, 1000.0/6000)
	f(1, 3000, 2999, 1)
	f(1, 3001, 3001, 1)
	f(1, 0, 10, 0)
	f(0, 5000, 10, 0)
	if FeePerCU(5000, 0) != Score(1, 5000, 3000) {
		t.Fatal("FeePerCU")
	}
	// Anything paying more per compute unit outranks the empty
	// transaction: a transfer with a price of 1 micro-lamport per CU.
	var v View
	empty, transfer := legacy1(1).bytes(), cbTx(cb(cbPrice(1)), cb(cbLimit(3000))).bytes()
	scores := make([]float64, 2)
	for i, data := range [][]byte{empty, transfer} {
		if r := v.Parse(data); r != OK {
			t.Fatal(r)
		}
		b, r := v.Admit(data, DefaultFeeParams(), Limits{})
		if r != OK {
			t.Fatal(r)
		}
		scores[i] = FeePerCU(b.Fee, b.CUs)
	}
	if !(scores[0] < scores[1]) {
		t.Fatalf("empty %v, paying %v", scores[0], scores[1])
	}
}
