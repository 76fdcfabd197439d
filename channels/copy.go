package channels

import "encoding/binary"

// copyRecord copies one record. A packet is copied as what a reader may
// look at — data[0:size] and the metadata from offset 1232 on — rather
// than all 1264 bytes: a typical transaction uses a few hundred bytes of
// the 1232-byte data area, and the rest of dst keeps stale bytes that
// Packet.Data never exposes (the validator leaves that area uninitialised
// too). A packet whose size field exceeds the data area is copied whole, so
// the reader sees exactly what the producer wrote. Other records are
// copied whole.
//
// When src is in the ring, the size read here may be torn by a concurrent
// producer; the caller's tail re-check discards such a copy, as for any
// other byte of the record.
func copyRecord[R Record](dst, src *R) {
	if s, ok := any(src).(*Packet); ok {
		d := any(dst).(*Packet)
		n := binary.LittleEndian.Uint64(s[packetSizeOff:])
		if n <= PacketDataSize {
			copy(d[:n], s[:n])
			copy(d[PacketDataSize:], s[PacketDataSize:])
			return
		}
	}
	*dst = *src
}
