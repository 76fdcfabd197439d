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

func TestEvaluateTx(t *testing.T) {
	data := fixLegacy.bytes()
	v4, v6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::7")
	mapped := netip.AddrFrom16(v4.As16())
	for _, c := range []struct {
		name  string
		data  []byte
		addr  netip.Addr
		flags uint8
		want  Reject
		hash  uint64 // when OK
	}{
		{"ipv4", data, v4, 0, OK, refHash(3, data, []byte{10, 1, 2, 3})},
		{"ipv6", data, v6, channels.FlagForwarded, OK, refHash(3, data, v6.AsSlice())},
		// The form given is hashed: a record carries an IPv4 source as
		// IPv4 (SetAddr unmaps), so a caller hands the unmapped form.
		{"ipv4-mapped", data, mapped, 0, OK, refHash(3, data, mapped.AsSlice())},
		{"size 1233", make([]byte, MaxTxSize+1), v4, 0, RejectSize, 0},
		{"size before address", make([]byte, MaxTxSize+1), netip.Addr{}, channels.FlagDiscard, RejectSize, 0},
		{"zero address", data, netip.Addr{}, 0, RejectAddr, 0},
		{"address before discard", data, netip.Addr{}, channels.FlagDiscard, RejectAddr, 0},
		{"discard", data, v4, channels.FlagDiscard | channels.FlagForwarded, RejectDiscard, 0},
		{"empty", nil, v4, 0, RejectSignatures, 0},
		{"trailing", append(data[:len(data):len(data)], 0), v4, 0, RejectTrailing, 0},
	} {
		e := NewEvaluator(3)
		info, r := e.EvaluateTx(c.data, c.addr, c.flags)
		if r != c.want {
			t.Fatalf("%s: %v, want %v", c.name, r, c.want)
		}
		if r != OK {
			if info != (Info{}) {
				t.Fatalf("%s: rejected with info %+v", c.name, info)
			}
			continue
		}
		if info.Hash != c.hash || TxHash(3, c.data, c.addr) != c.hash {
			t.Fatalf("%s: hash %x, TxHash %x, want %x", c.name, info.Hash, TxHash(3, c.data, c.addr), c.hash)
		}
		insp, _ := e.InspectTx(c.data, c.addr, c.flags)
		if insp.Hash != 0 || (insp != Info{SigOff: info.SigOff, Version: info.Version, Payer: info.Payer, Budget: info.Budget}) {
			t.Fatalf("%s: InspectTx %+v, EvaluateTx %+v", c.name, insp, info)
		}
	}
	if TxHash(3, data, netip.Addr{}) != refHash(3, data, nil) {
		t.Fatal("TxHash of the zero Addr hashes address bytes")
	}
}

// refSum is XXH64 with seed over b.
func refSum(seed uint64, b []byte) uint64 {
	d := xxhash.NewWithSeed(seed)
	_, _ = d.Write(b)
	return d.Sum64()
}

// refInspect is the record inspection as Evaluate made it before the
// byte-level entry point, written out: the size field, the address tag,
// DISCARD, then View.Admit on data[0:size].
func refInspect(v *View, p *channels.Packet) (Info, Reject) {
	size := p.Size()
	if size > channels.PacketDataSize {
		return Info{}, RejectSize
	}
	if t := p.AddrTag(); t != channels.AddrTagIPv4 && t != channels.AddrTagIPv6 {
		return Info{}, RejectAddr
	}
	if p.Flags()&channels.FlagDiscard != 0 {
		return Info{}, RejectDiscard
	}
	data := p[:size:size]
	v.Parse(data)
	b, r := v.Admit(data, DefaultFeeParams(), Limits{})
	if r != OK {
		return Info{}, r
	}
	return Info{SigOff: uint16(v.SignatureOffset()), Version: v.Version(), Payer: v.FeePayer(data), Budget: b}, OK
}

// FuzzEvaluateTxMatchesRecord: over random records (any data, size
// field, address tag and bytes, flags, seed), the record wrappers
// Evaluate and PacketHash, the byte-level EvaluateTx and TxHash on the
// record's bytes, address and flags, and the record inspection and hash
// written out (refInspect, refHash) agree: the same verdict, the same
// Info, the same hash bit for bit.
func FuzzEvaluateTxMatchesRecord(f *testing.F) {
	ok := fixLegacy.bytes()
	f.Add(ok, uint64(0), uint8(channels.AddrTagIPv4), []byte{10, 0, 0, 1}, uint8(0), uint64(0x5eed))
	f.Add(ok, uint64(0), uint8(channels.AddrTagIPv6), []byte{0xfe, 0x80, 15: 1}, uint8(0), uint64(0))
	f.Add(ok, uint64(0), uint8(channels.AddrTagIPv6), []byte{10: 0xff, 11: 0xff, 12: 1, 13: 2, 14: 3, 15: 4}, uint8(0), uint64(1))
	f.Add(ok, uint64(0), uint8(channels.AddrTagIPv4), []byte{10, 0, 0, 1}, uint8(channels.FlagDiscard), uint64(2))
	f.Add(ok, uint64(0), uint8(7), []byte{10, 0, 0, 1}, uint8(0), uint64(3))
	f.Add(ok, uint64(5000), uint8(channels.AddrTagIPv4), []byte{10, 0, 0, 1}, uint8(0), uint64(4))
	f.Add(ok, uint64(len(ok)+3), uint8(channels.AddrTagIPv4), []byte{10, 0, 0, 1}, uint8(0), uint64(5))
	f.Add(v0Tx(f), uint64(0), uint8(channels.AddrTagIPv4), []byte{1, 2, 3, 4}, uint8(0xff&^channels.FlagDiscard), uint64(6))
	f.Add([]byte{0, 1, 2}, uint64(0), uint8(channels.AddrTagIPv4), []byte{1, 2, 3, 4}, uint8(channels.FlagFromStakedNode), uint64(7))
	var p channels.Packet
	var ref View
	f.Fuzz(func(t *testing.T, data []byte, size uint64, tag uint8, addr []byte, flags uint8, seed uint64) {
		p = channels.Packet{}
		if !p.SetData(data) {
			return
		}
		if size != 0 {
			p.SetSize(size) // a size field the data does not back
		}
		p.SetAddr(netip.AddrFrom4([4]byte{1, 2, 3, 4}))
		p[channels.PacketDataSize+8] = tag
		copy(p[channels.PacketDataSize+9:channels.PacketDataSize+25], addr)
		p.SetFlags(flags)

		e := NewEvaluator(seed)
		rec, rr := e.Evaluate(&p)
		d, a, fl := TxOf(&p)
		tx, tr := e.EvaluateTx(d, a, fl)
		want, wr := refInspect(&ref, &p)
		// The record hash, malformed records included: data[0:min(size,
		// 1232)] ‖ the size field as is ‖ the tag's address bytes.
		n := p.Size()
		pre := append([]byte{}, p[:min(n, channels.PacketDataSize)]...)
		pre = binary.LittleEndian.AppendUint64(pre, n)
		pre = append(pre, p.AddrBytes()...)
		if h := PacketHash(seed, &p); h != refSum(seed, pre) {
			t.Fatalf("PacketHash %x, written out %x", h, refSum(seed, pre))
		}
		if rr != wr || tr != wr {
			t.Fatalf("Evaluate %v, EvaluateTx %v, written out %v", rr, tr, wr)
		}
		if wr != OK {
			if rec != (Info{}) || tx != (Info{}) {
				t.Fatalf("rejected with info %+v / %+v", rec, tx)
			}
			return
		}
		want.Hash = refHash(seed, p[:n], p.AddrBytes())
		if rec != want || tx != want {
			t.Fatalf("Evaluate %+v, EvaluateTx %+v, written out %+v", rec, tx, want)
		}
		if h := PacketHash(seed, &p); h != want.Hash || TxHash(seed, d, a) != want.Hash {
			t.Fatalf("PacketHash %x, TxHash %x, written out %x", h, TxHash(seed, d, a), want.Hash)
		}
	})
}
