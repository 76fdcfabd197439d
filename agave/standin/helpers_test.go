package standin

import (
	"encoding/binary"
	"testing"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
)

// testTx describes a transaction for the bank tests: one signature, the
// payer as signer, extra writable and readonly static keys, one
// instruction of program key "prog" with dataLen bytes, optional
// SetComputeUnitLimit/Price, and v0 lookups.
type testTx struct {
	id        uint64 // makes the signature unique
	payer     Key
	writable  []Key
	readonly  []Key
	blockhash Key
	cuLimit   uint32
	cuPrice   uint64
	lut       *Key
	lutW      []byte
	lutR      []byte
}

var (
	progKey = keyOf(0xfe)
	// ComputeBudget111111111111111111111111111111
	cbKey = Key{0x03, 0x06, 0x46, 0x6f, 0xe5, 0x21, 0x17, 0x32, 0xff, 0xec, 0xad, 0xba, 0x72, 0xc3, 0x9b, 0xe7,
		0xbc, 0x8c, 0xe5, 0xbb, 0xc5, 0xf7, 0x12, 0x6b, 0x2c, 0x43, 0x9b, 0x3a, 0x40, 0x00, 0x00, 0x00}
)

func keyOf(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b
	}
	return k
}

// bytes encodes the transaction in wire format.
func (t testTx) bytes() []byte {
	b := []byte{1}
	var sig [64]byte
	binary.LittleEndian.PutUint64(sig[:], t.id)
	sig[63] = 0x5a
	b = append(b, sig[:]...)
	if t.lut != nil {
		b = append(b, 0x80)
	}
	keys := []Key{t.payer}
	keys = append(keys, t.writable...)
	keys = append(keys, t.readonly...)
	keys = append(keys, progKey, cbKey)
	b = append(b, 1, 0, byte(len(t.readonly)+2), byte(len(keys)))
	for _, k := range keys {
		b = append(b, k[:]...)
	}
	b = append(b, t.blockhash[:]...)
	prog := byte(len(keys) - 2)
	cb := byte(len(keys) - 1)
	nix := 1
	if t.cuLimit > 0 {
		nix++
	}
	if t.cuPrice > 0 {
		nix++
	}
	b = append(b, byte(nix))
	if t.cuLimit > 0 {
		b = append(b, cb, 0, 5, 2)
		b = binary.LittleEndian.AppendUint32(b, t.cuLimit)
	}
	if t.cuPrice > 0 {
		b = append(b, cb, 0, 9, 3)
		b = binary.LittleEndian.AppendUint64(b, t.cuPrice)
	}
	b = append(b, prog, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8)
	if t.lut != nil {
		b = append(b, 1)
		b = append(b, t.lut[:]...)
		b = append(b, byte(len(t.lutW)))
		b = append(b, t.lutW...)
		b = append(b, byte(len(t.lutR)))
		b = append(b, t.lutR...)
	}
	return b
}

// loadTx parses tx for bank b into t.
func loadTx(tb testing.TB, b *Bank, tx testTx, t *txn) {
	tb.Helper()
	t.load(tx.bytes(), b.tables, b.fp)
}

// feedRig is what a feeder test needs of a session: an allocator (the
// feeder's handle and pack's) and a tpu_to_pack queue with both ends.
type feedRig struct {
	mem          *shm.Region
	feedA, packA *rtsalloc.Allocator
	prod         *shaq.Producer
	cons         *shaq.Consumer
}

// newFeedRig creates an allocator of allocBytes in format af and a
// tpu_to_pack queue of capacity messages in format qf, both closed at
// the end of the test.
func newFeedRig(tb testing.TB, allocBytes int, af rtsalloc.Format, qf shaq.Format, capacity int) feedRig {
	tb.Helper()
	ar, err := shm.Create("allocator", allocBytes, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ar.Close() })
	if err := rtsalloc.Create(ar, af, 2, SlabSize); err != nil {
		tb.Fatal(err)
	}
	// Format 2.0 has explicit slots; later formats claim one (-1).
	slots := [2]int{-1, -1}
	if af == rtsalloc.V2 {
		slots = [2]int{0, 1}
	}
	rig := feedRig{mem: ar}
	if rig.feedA, err = rtsalloc.Join(ar, af, slots[0]); err != nil {
		tb.Fatal(err)
	}
	if rig.packA, err = rtsalloc.Join(ar, af, slots[1]); err != nil {
		tb.Fatal(err)
	}
	qr, err := shm.Create("tpu_to_pack", shaq.MinimumFileSize(qf, bindings.TpuToPackSize, capacity), false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { qr.Close() })
	if err := shaq.Create(qr, qf, bindings.TpuToPackSize); err != nil {
		tb.Fatal(err)
	}
	if rig.prod, err = shaq.NewProducer(qr, qf, bindings.TpuToPackSize); err != nil {
		tb.Fatal(err)
	}
	if rig.cons, err = shaq.NewConsumer(qr, qf, bindings.TpuToPackSize); err != nil {
		tb.Fatal(err)
	}
	return rig
}

// eachFed reads every message waiting on tpu_to_pack and calls f with it
// and its transaction's bytes in mem.
func eachFed(tb testing.TB, cons *shaq.Consumer, mem []byte, f func(m bindings.TpuToPack, data []byte)) {
	tb.Helper()
	cons.Sync()
	for {
		b, ok := cons.TryRead()
		if !ok {
			return
		}
		m, err := bindings.DecodeTpuToPack(b)
		if err != nil {
			tb.Fatal(err)
		}
		data, err := m.Transaction.Bytes(mem)
		if err != nil {
			tb.Fatal(err)
		}
		f(m, data)
	}
}
