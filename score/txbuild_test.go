package score

import "encoding/binary"

// A small hand encoder for byte fixtures. It writes exactly what it is
// told, so tests can build transactions that break one rule at a time;
// the independent encoder (solana-go) is used in solana_test.go.

type fixIx struct {
	prog byte
	accs []byte
	data []byte
}

type fixLut struct {
	key  byte // the table key is 32 bytes of this value
	w, r []byte
}

type fixTx struct {
	nsig   int  // signatures written (each 64 bytes of 0xS0+i)
	v0     bool // write the 0x80 prefix and a lookup section
	hdr    [3]byte
	nkeys  int // static keys written; key i is 32 bytes of i+1 unless overridden
	keys   map[int][32]byte
	ixs    []fixIx
	luts   []fixLut
	prefix byte // when non-zero, written instead of 0x80 (v0 must be true)

	// v1 (SIMD-0385): the message first (0x81, header, config mask,
	// blockhash, instruction and address counts, addresses, config words,
	// instruction headers, payloads), then nsig signatures.
	v1   bool
	mask uint32   // config mask
	cfg  []uint32 // config words, written as given
}

// v1Tx returns a valid v1 transaction shape: one signer (the payer),
// nkeys addresses, no instructions, no config.
func v1Tx(nkeys int, ixs ...fixIx) fixTx {
	return fixTx{v1: true, nsig: 1, hdr: [3]byte{1, 0, 0}, nkeys: nkeys, ixs: ixs}
}

// withConfig returns t with the v1 config for the given values: each
// pointer that is not nil sets its bits (priority fee 0 and 1, compute
// unit limit 2, loaded accounts data size 3, heap 4) and its words.
func (t fixTx) withConfig(prio *uint64, cu, loaded, heap *uint32) fixTx {
	t.mask, t.cfg = 0, nil
	if prio != nil {
		t.mask |= 3
		t.cfg = append(t.cfg, uint32(*prio), uint32(*prio>>32))
	}
	for i, p := range []*uint32{cu, loaded, heap} {
		if p != nil {
			t.mask |= 1 << (2 + i)
			t.cfg = append(t.cfg, *p)
		}
	}
	return t
}

func u32p(v uint32) *uint32 { return &v }
func u64p(v uint64) *uint64 { return &v }

// legacy1 returns a valid legacy transaction shape: one signer (the
// payer), nkeys static keys, no instructions.
func legacy1(nkeys int) fixTx {
	return fixTx{nsig: 1, hdr: [3]byte{1, 0, 0}, nkeys: nkeys}
}

// shortvec appends the minimal compact-u16 encoding of n.
func shortvec(b []byte, n int) []byte {
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func (t fixTx) key(i int) [32]byte {
	if k, ok := t.keys[i]; ok {
		return k
	}
	var k [32]byte
	for j := range k {
		k[j] = byte(i + 1)
	}
	return k
}

func (t fixTx) withKey(i int, k [32]byte) fixTx {
	m := make(map[int][32]byte, len(t.keys)+1)
	for a, b := range t.keys {
		m[a] = b
	}
	m[i] = k
	t.keys = m
	return t
}

// bytesV1 encodes a v1 t.
func (t fixTx) bytesV1() []byte {
	b := []byte{0x81}
	b = append(b, t.hdr[:]...)
	b = binary.LittleEndian.AppendUint32(b, t.mask)
	for range 32 {
		b = append(b, 0xBB) // lifetime specifier
	}
	b = append(b, byte(len(t.ixs)), byte(t.nkeys))
	for i := range t.nkeys {
		k := t.key(i)
		b = append(b, k[:]...)
	}
	for _, w := range t.cfg {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	for _, ix := range t.ixs {
		b = append(b, ix.prog, byte(len(ix.accs)))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(ix.data)))
	}
	for _, ix := range t.ixs {
		b = append(b, ix.accs...)
		b = append(b, ix.data...)
	}
	for i := range t.nsig {
		for range 64 {
			b = append(b, byte(0xA0+i))
		}
	}
	return b
}

// bytes encodes t.
func (t fixTx) bytes() []byte {
	if t.v1 {
		return t.bytesV1()
	}
	b := []byte{byte(t.nsig)}
	for i := range t.nsig {
		for range 64 {
			b = append(b, byte(0xA0+i))
		}
	}
	if t.v0 {
		p := byte(0x80)
		if t.prefix != 0 {
			p = t.prefix
		}
		b = append(b, p)
	}
	b = append(b, t.hdr[:]...)
	b = append(b, byte(t.nkeys))
	for i := range t.nkeys {
		k := t.key(i)
		b = append(b, k[:]...)
	}
	for range 32 {
		b = append(b, 0xBB) // recent blockhash
	}
	b = shortvec(b, len(t.ixs))
	for _, ix := range t.ixs {
		b = append(b, ix.prog)
		b = shortvec(b, len(ix.accs))
		b = append(b, ix.accs...)
		b = shortvec(b, len(ix.data))
		b = append(b, ix.data...)
	}
	if t.v0 {
		b = append(b, byte(len(t.luts)))
		for _, l := range t.luts {
			for range 32 {
				b = append(b, l.key)
			}
			b = shortvec(b, len(l.w))
			b = append(b, l.w...)
			b = shortvec(b, len(l.r))
			b = append(b, l.r...)
		}
	}
	return b
}

// Compute-budget instruction data.
func cbLimit(v uint32) []byte { return binary.LittleEndian.AppendUint32([]byte{2}, v) }
func cbPrice(v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{3}, v) }
func cbHeap(v uint32) []byte  { return binary.LittleEndian.AppendUint32([]byte{1}, v) }
func cbLoaded(v uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{4}, v)
}

// cbTx returns a valid legacy transaction whose key 1 is the compute
// budget program and key 2 an ordinary program, with the given
// instructions (use prog 1 for compute budget, 2 for the other).
func cbTx(ixs ...fixIx) fixTx {
	t := fixTx{nsig: 1, hdr: [3]byte{1, 0, 2}, nkeys: 3, ixs: ixs}
	return t.withKey(1, ComputeBudgetProgram)
}

func cb(data []byte) fixIx { return fixIx{prog: 1, data: data} }
func other() fixIx         { return fixIx{prog: 2, accs: []byte{0}, data: []byte{9}} }
func repeat(n int) []fixIx {
	out := make([]fixIx, n)
	for i := range out {
		out[i] = other()
	}
	return out
}
