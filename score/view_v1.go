package score

import (
	"encoding/binary"
	"math/bits"
)

// The v1 transaction format (SIMD-0385), as framed by agave-sdk
// transaction-view at 711c4df (transaction_frame.rs try_new_as_v1,
// transaction_config_frame.rs): Parse sends a transaction whose first byte
// has bit 7 set here; sanitize and the iterators share the rest with
// legacy and v0.

const (
	versionV1 = 0x81

	// v1 layout (transaction_frame.rs try_new_as_v1): version, three
	// header bytes, config mask (u32 LE), lifetime specifier (32),
	// instruction count (u8), address count (u8).
	v1MaskOff    = 4
	v1HashOff    = 8
	v1NixOff     = 40
	v1NkeysOff   = 41
	v1PrefixLen  = 42
	v1IxHdrLen   = 4    // program u8, account count u8, data length u16 LE
	v1ConfigBits = 0x1f // transaction_config_frame.rs sanitize_mask
)

// parseV1 parses a v1 transaction (SIMD-0385) the way
// transaction_frame.rs try_new_as_v1 does (agave-sdk 711c4df): the
// message comes first, from the version byte 0x81 to the end of the
// instruction payloads, and the signatures (one per required signature)
// close the transaction. Structure failures map onto the parse reasons
// (P2 the fixed prefix and config values, P3 addresses, P5 instruction
// headers and payloads, P1 signatures, P7 trailing bytes). A config mask
// Agave refuses (unknown bits, half a priority fee) is recorded for
// sanitize rather than failing here: the rest of the bytes are still
// walked with one value word per set bit, so that only bytes that are no
// transaction at all count as unparsable.
func (v *View) parseV1(data []byte) Reject {
	n := len(data)
	if n > MaxTransactionSizeV1 {
		return RejectSize
	}
	v.size = uint16(n)
	if n < v1PrefixLen {
		return RejectHeader
	}
	if data[0] != versionV1 {
		return RejectVersion
	}
	v.ver = V1
	v.nreq, v.nros, v.nrou = data[1], data[2], data[3]
	mask := binary.LittleEndian.Uint32(data[v1MaskOff:])
	v.hashOff = v1HashOff
	nix := int(data[v1NixOff])
	nkeys := int(data[v1NkeysOff])
	off := v1PrefixLen

	// Addresses: every account of a v1 transaction is static.
	if nkeys*keyLen > n-off {
		return RejectAccountKeys
	}
	v.nkeys = uint8(nkeys)
	v.keysOff = uint16(off)
	off += nkeys * keyLen

	// Config values: one 4-byte word per set mask bit.
	nval := bits.OnesCount32(mask)
	if nval*4 > n-off {
		return RejectHeader
	}
	cfgOff := off
	off += nval * 4

	// Instruction headers, then all payloads (accounts, data) in order.
	if nix*v1IxHdrLen > n-off {
		return RejectInstructions
	}
	v.nix = uint16(nix)
	v.ixOff = uint16(off)
	pay := 0
	for i := range nix {
		h := off + i*v1IxHdrLen
		pay += int(data[h+1]) + int(binary.LittleEndian.Uint16(data[h+2:]))
	}
	off += nix * v1IxHdrLen
	if pay > n-off {
		return RejectInstructions
	}
	v.payOff = uint16(off)
	v.scanV1(data)
	off += pay

	// Signatures.
	v.msgEnd = uint16(off)
	if int(v.nreq)*signatureLen > n-off {
		return RejectSignatures
	}
	v.nsig = v.nreq
	v.sigOff = uint16(off)
	off += int(v.nreq) * signatureLen
	if off != n {
		return RejectTrailing
	}

	// The config mask (transaction_config_frame.rs sanitize_mask) and its
	// values (TransactionConfigView: word index = set bits below the bit).
	if mask&^v1ConfigBits != 0 || (mask&1 != 0) != (mask&2 != 0) {
		v.san.badConfig = true
		return OK
	}
	cb := &v.cb
	if mask&1 != 0 {
		cb.prio = binary.LittleEndian.Uint64(data[configWord(cfgOff, mask, 0):])
		cb.seen |= seenPrio
	}
	if mask&(1<<2) != 0 {
		cb.limit = binary.LittleEndian.Uint32(data[configWord(cfgOff, mask, 2):])
		cb.seen |= seenLimit
	}
	if mask&(1<<3) != 0 {
		cb.loaded = binary.LittleEndian.Uint32(data[configWord(cfgOff, mask, 3):])
		cb.seen |= seenLoaded
	}
	if mask&(1<<4) != 0 {
		cb.heap = binary.LittleEndian.Uint32(data[configWord(cfgOff, mask, 4):])
		cb.seen |= seenHeap
	}
	return OK
}

// configWord returns the offset of the value of mask bit bit: the values
// start at off, one 4-byte word per set bit, in bit order.
func configWord(off int, mask uint32, bit uint) int {
	return off + 4*bits.OnesCount32(mask&(1<<bit-1))
}

// scanV1 walks the instructions of a v1 view whose headers and payloads
// parseV1 has bounds-checked, recording the same facts.
func (v *View) scanV1(data []byte) {
	v.san.badIx = noBad
	var kc keyClass
	p := int(v.payOff)
	for i := range int(v.nix) {
		h := int(v.ixOff) + i*v1IxHdrLen
		na := int(data[h+1])
		dl := int(binary.LittleEndian.Uint16(data[h+2:]))
		v.fact(data, &kc, i, int(data[h]), data[p:p+na], data[p+na:p+na+dl])
		p += na + dl
	}
}

// nextV1 decodes the next v1 instruction: a 4-byte header at off, its
// accounts and data at pay.
func (it *InstructionIter) nextV1(data []byte, in *Instruction) bool {
	h, p := int(it.off), int(it.pay)
	if v1IxHdrLen > len(data)-h {
		it.left = 0
		return false
	}
	na := int(data[h+1])
	dl := int(binary.LittleEndian.Uint16(data[h+2:]))
	if na+dl > len(data)-p {
		it.left = 0
		return false
	}
	*in = Instruction{ProgramIndex: data[h], accOff: uint16(p), accLen: uint16(na), dataOff: uint16(p + na), dataLen: uint16(dl)}
	it.off = uint16(h + v1IxHdrLen)
	it.pay = uint16(p + na + dl)
	it.left--
	return true
}
