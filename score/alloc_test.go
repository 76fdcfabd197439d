package score

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/internal/invariants"
)

// The per-packet paths must not allocate. These tests prove it with
// testing.AllocsPerRun; the benchmarks in score_timing_test.go show the
// same with -benchmem.

func zeroAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run, want 0", name, n)
	}
}

func TestZeroAllocs(t *testing.T) {
	txs := map[string][]byte{
		"typical":   typicalTx(t),
		"v0":        v0Tx(t),
		"max-size":  maxSizeTx(t),
		"rejected":  append(fixLegacy.bytes(), 0),
		"duplicate": cbTx(cb(cbPrice(1)), cb(cbPrice(1))).bytes(),
		"v1":        v1Tx(3, fixIx{prog: 1, accs: []byte{0, 2}, data: []byte{1}}).withConfig(u64p(9), u32p(9), u32p(9), u32p(64<<10)).bytes(),
		"v1-off":    v1Tx(2, fixIx{prog: 1}).bytes(),
		"35-keys":   manyKeysTx(35).bytes(),
		"locks":     lookupTx(40, 40).bytes(),
	}
	e := NewEvaluator(1)
	var v View
	for name, data := range txs {
		p := packetOf(t, data)
		zeroAllocs(t, "Evaluate "+name, func() { _, _ = e.Evaluate(p) })
		zeroAllocs(t, "PacketHash "+name, func() { _ = PacketHash(9, p) })
		d, a, fl := TxOf(p)
		zeroAllocs(t, "EvaluateTx "+name, func() { _, _ = e.EvaluateTx(d, a, fl) })
		zeroAllocs(t, "TxHash "+name, func() { _ = TxHash(9, d, a) })
		a6 := netip.MustParseAddr("2001:db8::7")
		zeroAllocs(t, "TxHash ipv6 "+name, func() { _ = TxHash(9, d, a6) })
		zeroAllocs(t, "Parse+Budget "+name, func() {
			if v.Parse(data) == OK {
				_, _ = v.Budget(data, DefaultFeeParams())
			}
		})
		zeroAllocs(t, "Parse+Admit "+name, func() {
			v.Parse(data)
			_, _ = v.Admit(data, DefaultFeeParams(), Limits{NoTxV1: name == "v1-off"})
		})
		zeroAllocs(t, "accessors "+name, func() {
			_ = v.FeePayer(data)
			_ = v.Signature(data, 0)
			it := v.Instructions()
			var in Instruction
			for it.Next(data, &in) {
				_ = in.Data(data)
			}
			lt := v.Lookups()
			var l Lookup
			for lt.Next(data, &l) {
				_ = l.Writable(data)
			}
		})
	}
	zeroAllocs(t, "Score", func() { _ = Score(1.5, 10_000, 200_000) })
	e.Limits.NoTxV1 = true
	p := packetOf(t, txs["v1-off"])
	zeroAllocs(t, "Evaluate v1 off", func() { _, _ = e.Evaluate(p) })
}

func TestZeroAllocsQueue(t *testing.T) {
	if invariants.Enabled {
		t.Skip("the invariants build verifies the whole queue, allocating, after every change")
	}
	const capacity = 1024
	q := NewQueue(capacity, time.Second)
	p := packetOf(t, typicalTx(t))
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range capacity {
		q.Push(p, rng.Float64(), uint64(i), 0, 0)
	}
	now := int64(0)
	zeroAllocs(t, "Push (full, evicting)", func() {
		now++
		if a, ev := q.Push(p, 1+rng.Float64(), 1, 0, now); !a || !ev {
			t.Fatal("not evicting")
		}
	})
	zeroAllocs(t, "Push (full, refused)", func() {
		if a, _ := q.Push(p, -1, 1, 0, now); a {
			t.Fatal("admitted")
		}
	})
	zeroAllocs(t, "PopMax", func() {
		if _, _, ok := q.PopMax(now); !ok {
			t.Fatal("empty")
		}
	})
	zeroAllocs(t, "Push (free slot)", func() { q.Push(p, rng.Float64(), 1, 0, now) })
	zeroAllocs(t, "ExpireMin", func() { q.ExpireMin(now+int64(time.Hour), 1) })
	var sink *channels.Packet
	zeroAllocs(t, "PopMax (expired, empty)", func() { sink, _, _ = q.PopMax(now + int64(time.Hour)) })
	_ = sink
}

func TestZeroAllocsPacer(t *testing.T) {
	p := NewPacer(100_000, time.Millisecond, 1000)
	now := int64(0)
	zeroAllocs(t, "Allow+Sent", func() {
		now += 250_000
		p.Sent(p.Allow(now))
	})
}
