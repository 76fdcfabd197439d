package sim

import (
	"net/netip"

	"github.com/solqos/qos/channels"
)

// PacketKind says what a generated packet is meant to be.
type PacketKind uint8

// Packet kinds, as drawn from an agent's mix.
const (
	PacketValid        PacketKind = PacketKind(kindValid)
	PacketBadSignature PacketKind = PacketKind(kindBadSignature)
	PacketUnparsable   PacketKind = PacketKind(kindUnparsable)
)

// Packet describes one packet Traffic.NextPacket wrote: enough for a
// validator stand-in to keep ground truth about it.
type Packet struct {
	// At is the packet's virtual produce time, ns since the traffic's
	// start (Poisson arrivals at the agents' rates).
	At int64
	// Seq numbers original packets; a duplicate repeats its origin's.
	Seq uint64
	// Fee is the fee the transaction pays if executed (Agave's
	// computation), CUs its requested compute units.
	Fee uint64
	CUs uint32
	// Agent is the index of the agent in the Config; Channel the index of
	// its channel in tpu, fwd, re1, re2 order.
	Agent   int
	Channel int
	// Kind is the origin's kind; Duplicate says the packet is a
	// byte-identical resend of an earlier one.
	Kind      PacketKind
	Duplicate bool
	// Signer is the index of the fee payer among the agent's signers.
	Signer int
}

// NextPacket writes the next packet into p, like Next, and describes it.
// It does not allocate.
func (t *Traffic) NextPacket(p *channels.Packet) Packet {
	a, o, at, dup := t.g.draw()
	t.g.encode(a, &o, p)
	e := makeEvent(a, &o, at, dup)
	return Packet{At: at, Seq: e.seq, Fee: e.fee, CUs: e.cus, Agent: a.id, Channel: a.channel,
		Kind: PacketKind(o.kind), Duplicate: dup, Signer: int(o.signer)}
}

// Agents returns the number of agents.
func (t *Traffic) Agents() int { return len(t.g.agents) }

// Signers returns the number of fee payers of agent i (0 if out of range).
func (t *Traffic) Signers(agent int) int {
	if agent < 0 || agent >= len(t.g.agents) {
		return 0
	}
	return t.g.agents[agent].signers
}

// Payer returns the public key of signer s of agent i, and false if either
// is out of range.
func (t *Traffic) Payer(agent, s int) ([32]byte, bool) {
	if agent < 0 || agent >= len(t.g.agents) || s < 0 || s >= t.g.agents[agent].signers {
		return [32]byte{}, false
	}
	ti := &t.g.tpls[t.g.agents[agent].tpl+2*s]
	off := ti.off + ti.l.msg + 4 // legacy template: header (3), key count (1)
	return [32]byte(t.g.slab[off : off+32]), true
}

// Addrs returns the source addresses of agent i (nil if out of range). The
// slice is the traffic's own: do not modify it.
func (t *Traffic) Addrs(agent int) []netip.Addr {
	if agent < 0 || agent >= len(t.g.agents) {
		return nil
	}
	return t.g.agents[agent].ips
}

// SetBlockhash makes every later transaction name h as its recent
// blockhash (as clients do when a validator's bank moves on); signatures
// are made over the new bytes. Packets already written are unchanged, and
// a duplicate written later carries h too.
func (t *Traffic) SetBlockhash(h [32]byte) {
	for i := range t.g.tpls {
		ti := &t.g.tpls[i]
		off := ti.off + ti.l.msg + 4 + 3*32 // header, key count, three static keys
		if t.g.slab[ti.off+ti.l.msg] == 0x80 {
			off++ // v0 prefix
		}
		copy(t.g.slab[off:off+32], h[:])
	}
}

// Blockhash returns the recent blockhash the traffic's transactions name.
func (t *Traffic) Blockhash() [32]byte {
	if len(t.g.tpls) == 0 {
		return [32]byte{}
	}
	ti := &t.g.tpls[0]
	off := ti.off + ti.l.msg + 4 + 3*32
	return [32]byte(t.g.slab[off : off+32])
}

// Sigverify is the simulator's mock signature verification: every
// signature i must be the mock signature of the message under static key
// i. It is what a validator stand-in runs before handing packets on, as
// Agave's sigverify stage does. Not safe for concurrent use.
type Sigverify struct{ s signer }

// Verify reports whether data is a transaction whose signatures all
// verify. It never allocates.
func (v *Sigverify) Verify(data []byte) bool { return v.s.verify(data) }

// Sign writes the mock signatures of data's message under its static keys
// 0..nsig-1 into its signature slots, and reports false if data is not
// laid out as a transaction (nothing is written then). It lets a stand-in
// build transactions of its own (votes) that pass Verify.
func (v *Sigverify) Sign(data []byte) bool {
	if len(data) < 1 {
		return false
	}
	nsig := int(data[0])
	if nsig < 1 || nsig > 12 {
		return false
	}
	msg := 1 + nsig*64
	off := msg
	if off >= len(data) {
		return false
	}
	if data[off] == 0x80 {
		off++
	}
	if off+4 > len(data) {
		return false
	}
	nkeys := int(data[off+3])
	off += 4
	if nkeys < nsig || off+nkeys*32 > len(data) {
		return false
	}
	for i := 0; i < nsig; i++ {
		key := data[off+32*i : off+32*i+32]
		v.s.sign(secretOf(key), data[msg:], data[1+64*i:1+64*i+64])
	}
	return true
}

// LookupTable returns the address lookup table agent i's v0 transactions
// name (they write-lock its index 0), and false if i is out of range.
func (t *Traffic) LookupTable(agent int) ([32]byte, bool) {
	if agent < 0 || agent >= len(t.g.agents) || t.g.agents[agent].signers == 0 {
		return [32]byte{}, false
	}
	ti := &t.g.tpls[t.g.agents[agent].tpl+1] // signer 0, v0
	off := ti.off + ti.l.n - 3 - 32          // table key, then counts [1 0] and index [0]
	return [32]byte(t.g.slab[off : off+32]), true
}
