package model

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
)

// IP is the model's key for a packet source: an IPv4 address as the
// IPv4-mapped IPv6 address ::ffff:a.b.c.d, or an IPv6 address reduced to its
// /64 prefix (the low 8 bytes zero), since one IPv6 host usually owns a whole
// /64. Build it with IPOf, IPv4 or IPv6; the model canonicalises any other
// value the same way before using it.
type IP [16]byte

// Signer is the model's key for a transaction's fee payer (its first static
// account key).
type Signer [32]byte

// v4Mapped is the first 12 bytes of an IPv4-mapped IPv6 address.
var v4Mapped = [12]byte{10: 0xff, 11: 0xff}

// IPOf returns the key of a: IPv4 (and IPv4-mapped IPv6) addresses map to
// ::ffff:a.b.c.d, other IPv6 addresses to their /64 prefix; the zone is
// dropped. The zero Addr maps to the zero IP.
func IPOf(a netip.Addr) IP {
	if !a.IsValid() {
		return IP{}
	}
	return IP(a.As16()).canonical()
}

// IPv4 returns the key of the IPv4 address b (network byte order).
func IPv4(b [4]byte) IP {
	var ip IP
	copy(ip[:12], v4Mapped[:])
	copy(ip[12:], b[:])
	return ip
}

// IPv6 returns the key of the IPv6 address b (network byte order): its /64
// prefix, or ::ffff:a.b.c.d when b is an IPv4-mapped address.
func IPv6(b [16]byte) IP {
	return IP(b).canonical()
}

// Is4 reports whether ip is an IPv4 key (::ffff:a.b.c.d).
func (ip IP) Is4() bool {
	return binary.LittleEndian.Uint64(ip[0:8]) == 0 &&
		binary.BigEndian.Uint32(ip[8:12]) == 0x0000ffff
}

// canonical returns ip as IPOf would build it: unchanged when IPv4-mapped,
// else with its low 64 bits cleared.
func (ip IP) canonical() IP {
	if !ip.Is4() {
		binary.LittleEndian.PutUint64(ip[8:16], 0)
	}
	return ip
}

// Addr returns the address ip stands for: the IPv4 address, or the first
// address of the IPv6 /64 prefix.
func (ip IP) Addr() netip.Addr {
	return netip.AddrFrom16(ip).Unmap()
}

// String returns "a.b.c.d" for an IPv4 key and "prefix::/64" for an IPv6 key.
func (ip IP) String() string {
	if ip.Is4() {
		return ip.Addr().String()
	}
	return netip.PrefixFrom(ip.Addr(), 64).String()
}

func (ip IP) compare(o IP) int { return bytes.Compare(ip[:], o[:]) }

// String returns the signer key in hex.
func (s Signer) String() string { return hex.EncodeToString(s[:]) }

func (s Signer) compare(o Signer) int { return bytes.Compare(s[:], o[:]) }

// prefixes returns the two neighbourhoods of the canonical key ip whose
// records an unknown IP inherits: for IPv4 its /24 and /16, for IPv6 its
// /48 and /32 (as keys with the other bits zero). An IPv4 prefix keeps the
// ::ffff: marker, so it never equals an IPv6 one.
func (ip IP) prefixes() (near, wide IP) {
	near, wide = ip, ip
	if ip.Is4() {
		near[15] = 0
		wide[14], wide[15] = 0, 0
		return near, wide
	}
	clear(near[6:])
	clear(wide[4:])
	return near, wide
}
