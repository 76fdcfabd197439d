package channels

import (
	"encoding/binary"
	"net/netip"
)

// Record sizes in bytes, fixed by the validator's memory layout.
const (
	PacketSize        = 1264
	RemainingMetaSize = 16
	SignatureSize     = 64

	// PacketDataSize is the capacity of a packet's data area (Agave's
	// PACKET_DATA_SIZE).
	PacketDataSize = 1232
)

// Offsets inside a packet record (see docs/solana-wire.md §1).
const (
	packetSizeOff  = 1232
	packetAddrTag  = 1240
	packetAddrOff  = 1241
	packetPortOff  = 1258
	packetFlagsOff = 1260
)

// Address family tags of a packet record.
const (
	AddrTagIPv4 = 0
	AddrTagIPv6 = 1
)

// Packet flags (Agave's PacketFlags).
const (
	FlagDiscard        = 0x01
	FlagForwarded      = 0x02
	FlagRepair         = 0x04
	FlagSimpleVoteTx   = 0x08
	FlagTracerPacket   = 0x10
	FlagPerfTrack      = 0x40
	FlagFromStakedNode = 0x80
)

// Packet is one packet record: the memory image of an Agave Packet.
//
//	0            1232     1240 1241            1257 1258  1260  1261  1264
//	+------------+--------+---+----------------+---+-----+-----+-----+
//	| data       | size   |tag| addr (4 or 16) |pad| port|flags| pad |
//	+------------+--------+---+----------------+---+-----+-----+-----+
//
// A Packet is a plain value with no pointers; the accessors never read
// past the record, whatever its bytes say.
type Packet [PacketSize]byte

// Size returns the size field as written by the producer. It may exceed
// PacketDataSize in a malformed record; Data clamps, Valid reports it.
func (p *Packet) Size() uint64 { return binary.LittleEndian.Uint64(p[packetSizeOff:]) }

// SetSize writes the size field.
func (p *Packet) SetSize(n uint64) { binary.LittleEndian.PutUint64(p[packetSizeOff:], n) }

// Data returns the bytes in use, data[0:size], or nil if size is larger
// than the data area.
func (p *Packet) Data() []byte {
	n := p.Size()
	if n > PacketDataSize {
		return nil
	}
	return p[:n:n]
}

// AddrTag returns the raw address family tag.
func (p *Packet) AddrTag() uint8 { return p[packetAddrTag] }

// AddrBytes returns the address bytes that belong to the record's family:
// 4 for IPv4, 16 for IPv6, nil for an invalid tag.
func (p *Packet) AddrBytes() []byte {
	switch p[packetAddrTag] {
	case AddrTagIPv4:
		return p[packetAddrOff : packetAddrOff+4 : packetAddrOff+4]
	case AddrTagIPv6:
		return p[packetAddrOff : packetAddrOff+16 : packetAddrOff+16]
	}
	return nil
}

// Addr returns the source address, and false for an invalid tag.
func (p *Packet) Addr() (netip.Addr, bool) {
	switch p[packetAddrTag] {
	case AddrTagIPv4:
		return netip.AddrFrom4([4]byte(p[packetAddrOff : packetAddrOff+4])), true
	case AddrTagIPv6:
		return netip.AddrFrom16([16]byte(p[packetAddrOff : packetAddrOff+16])), true
	}
	return netip.Addr{}, false
}

// SetAddr writes the address family tag and bytes. An IPv4-mapped IPv6
// address is written as IPv4.
func (p *Packet) SetAddr(a netip.Addr) {
	clear(p[packetAddrTag:packetPortOff])
	if a.Is4() || a.Is4In6() {
		p[packetAddrTag] = AddrTagIPv4
		b := a.Unmap().As4()
		copy(p[packetAddrOff:], b[:])
		return
	}
	p[packetAddrTag] = AddrTagIPv6
	b := a.As16()
	copy(p[packetAddrOff:], b[:])
}

// Port returns the source port.
func (p *Packet) Port() uint16 { return binary.LittleEndian.Uint16(p[packetPortOff:]) }

// SetPort writes the source port.
func (p *Packet) SetPort(port uint16) { binary.LittleEndian.PutUint16(p[packetPortOff:], port) }

// Flags returns the packet flags.
func (p *Packet) Flags() uint8 { return p[packetFlagsOff] }

// SetFlags writes the packet flags.
func (p *Packet) SetFlags(f uint8) { p[packetFlagsOff] = f }

// SetData copies b into the data area and sets the size. It returns false,
// writing nothing, when b is longer than PacketDataSize.
func (p *Packet) SetData(b []byte) bool {
	if len(b) > PacketDataSize {
		return false
	}
	copy(p[:PacketDataSize], b)
	p.SetSize(uint64(len(b)))
	return true
}

// RemainingMeta is a scheduler result record: the packet hash and the
// execution time in nanoseconds (0 = not scheduled).
//
//	0           8            16
//	+-----------+------------+
//	| hash u64  | exec ns u64|
//	+-----------+------------+
type RemainingMeta [RemainingMetaSize]byte

// Hash returns the packet hash.
func (m *RemainingMeta) Hash() uint64 { return binary.LittleEndian.Uint64(m[0:]) }

// ExecNanos returns the execution time in nanoseconds; 0 means the
// transaction was not scheduled.
func (m *RemainingMeta) ExecNanos() uint64 { return binary.LittleEndian.Uint64(m[8:]) }

// Set writes both fields.
func (m *RemainingMeta) Set(hash, execNanos uint64) {
	binary.LittleEndian.PutUint64(m[0:], hash)
	binary.LittleEndian.PutUint64(m[8:], execNanos)
}

// Signature is a tx_status_cache record: the first signature of a
// recently confirmed transaction.
type Signature [SignatureSize]byte
