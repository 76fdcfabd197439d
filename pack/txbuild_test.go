package pack

import (
	"encoding/binary"
	"testing"

	"github.com/solqos/qos/score"
)

// testIx is one instruction of a test transaction.
type testIx struct {
	prog uint8
	accs []byte
	data []byte
}

// testLookup is one address-table lookup of a v0 test transaction.
type testLookup struct {
	table    Pubkey
	writable []byte
	readonly []byte
}

// testTx describes a transaction to encode: keys[0] pays; the header is
// (nreq, nros, nrou); nsig = nreq signatures of zeros (pack never
// verifies them).
type testTx struct {
	v0               bool
	nreq, nros, nrou uint8
	keys             []Pubkey
	ixs              []testIx
	luts             []testLookup
}

func appendShortvec(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return append(b, byte(n&0x7f|0x80), byte(n>>7))
}

func (t testTx) bytes() []byte {
	b := []byte{t.nreq}
	b = append(b, make([]byte, 64*int(t.nreq))...)
	if t.v0 {
		b = append(b, 0x80)
	}
	b = append(b, t.nreq, t.nros, t.nrou, byte(len(t.keys)))
	for _, k := range t.keys {
		b = append(b, k[:]...)
	}
	b = append(b, make([]byte, 32)...) // blockhash
	b = appendShortvec(b, len(t.ixs))
	for _, ix := range t.ixs {
		b = append(b, ix.prog)
		b = appendShortvec(b, len(ix.accs))
		b = append(b, ix.accs...)
		b = appendShortvec(b, len(ix.data))
		b = append(b, ix.data...)
	}
	if t.v0 {
		b = append(b, byte(len(t.luts)))
		for _, l := range t.luts {
			b = append(b, l.table[:]...)
			b = appendShortvec(b, len(l.writable))
			b = append(b, l.writable...)
			b = appendShortvec(b, len(l.readonly))
			b = append(b, l.readonly...)
		}
	}
	return b
}

// parse parses t and fails the test unless it sanitizes.
func (t testTx) parse(tb testing.TB) (*score.View, []byte, score.Budget) {
	tb.Helper()
	data := t.bytes()
	v := new(score.View)
	if r := v.Parse(data); r != score.OK {
		tb.Fatalf("test transaction does not parse: %v", r)
	}
	b, r := v.Budget(data, score.DefaultFeeParams())
	if r != score.OK {
		tb.Fatalf("test transaction's budget: %v", r)
	}
	return v, data, b
}

// key returns a distinct test key for n (never a reserved key: the first
// byte is 0xAA).
func key(n uint64) Pubkey {
	var k Pubkey
	k[0] = 0xAA
	binary.LittleEndian.PutUint64(k[8:], n)
	return k
}

func cbLimit(v uint32) []byte { return binary.LittleEndian.AppendUint32([]byte{2}, v) }
func cbPrice(v uint64) []byte { return binary.LittleEndian.AppendUint64([]byte{3}, v) }
func cbLoaded(v uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{4}, v)
}
