package score

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// Benchmarks of the per-packet work. Run with
//
//	go test -run=NONE -bench=. -benchmem ./score/
//
// Each reports packets/s next to ns/op; all must show 0 allocs/op.

var (
	sinkReject Reject
	sinkU64    uint64
	sinkF64    float64
	sinkInfo   Info
)

func reportPPS(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

func benchTxs(b *testing.B) []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		// A transfer with a compute-unit limit and price: what a
		// fee-paying transaction typically looks like (3 instructions,
		// 1 signature, ~260 bytes).
		{"typical", typicalTx(b)},
		// v0: two signers, two lookups, 3 instructions.
		{"v0", v0Tx(b)},
		// 1232 bytes, mostly instruction data.
		{"max-size", maxSizeTx(b)},
		// 1232 bytes... nearly: 200 tiny instructions to walk (refused
		// since SIMD-0160, after the whole walk).
		{"200-instructions", manyTx(b, 200)},
		// SIMD-0160's most: 64 instructions.
		{"64-instructions", manyTx(b, 64)},
		// v1: config with all five words, one instruction.
		{"v1", v1Tx(3, fixIx{prog: 1, accs: []byte{0, 2}, data: []byte{1, 2, 3}}).withConfig(u64p(50_000), u32p(200_000), u32p(1<<20), u32p(64<<10)).bytes()},
		// 35 static keys with one 8-byte prefix: the duplicate check's
		// worst case in a packet.
		{"35-keys", manyKeysTx(35).bytes()},
	}
}

func BenchmarkParse(b *testing.B) {
	for _, c := range benchTxs(b) {
		b.Run(c.name, func(b *testing.B) {
			var v View
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				sinkReject = v.Parse(c.data)
			}
			reportPPS(b)
		})
	}
}

func BenchmarkParseBudget(b *testing.B) {
	for _, c := range benchTxs(b) {
		b.Run(c.name, func(b *testing.B) {
			var v View
			p := DefaultFeeParams()
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				v.Parse(c.data)
				bu, _ := v.Budget(c.data, p)
				sinkU64 = bu.Fee
			}
			reportPPS(b)
		})
	}
}

// BenchmarkAdmit is Parse followed by Admit: every check Agave makes
// before execution, the account locks included, without the record
// checks and the hash.
func BenchmarkAdmit(b *testing.B) {
	for _, c := range benchTxs(b) {
		b.Run(c.name, func(b *testing.B) {
			var v View
			p := DefaultFeeParams()
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				v.Parse(c.data)
				bu, r := v.Admit(c.data, p, Limits{})
				sinkU64, sinkReject = bu.Fee, r
			}
			reportPPS(b)
		})
	}
}

func BenchmarkPacketHash(b *testing.B) {
	for _, c := range benchTxs(b) {
		b.Run(c.name, func(b *testing.B) {
			p := packetOf(b, c.data)
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				sinkU64 = PacketHash(0x1234, p)
			}
			reportPPS(b)
		})
	}
}

func BenchmarkEvaluate(b *testing.B) {
	for _, c := range benchTxs(b) {
		b.Run(c.name, func(b *testing.B) {
			p := packetOf(b, c.data)
			e := NewEvaluator(0x1234)
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				sinkInfo, sinkReject = e.Evaluate(p)
			}
			reportPPS(b)
		})
	}
}

func BenchmarkEvaluateTx(b *testing.B) {
	for _, c := range benchTxs(b) {
		b.Run(c.name, func(b *testing.B) {
			addr := netip.MustParseAddr("10.1.2.3")
			e := NewEvaluator(0x1234)
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				sinkInfo, sinkReject = e.EvaluateTx(c.data, addr, 0)
			}
			reportPPS(b)
		})
	}
}

func BenchmarkScore(b *testing.B) {
	b.ReportAllocs()
	fee := uint64(5000)
	for b.Loop() {
		sinkF64 = Score(1.25, fee, 200_000)
		fee++
	}
}

// BenchmarkQueuePushFull pushes into a full default-capacity queue:
// "evict" with scores that always beat the minimum (the slow path: copy,
// sift down), "mixed" with scores drawn like the ones already queued.
func BenchmarkQueuePushFull(b *testing.B) {
	p := packetOf(b, typicalTx(b))
	for _, mode := range []string{"evict", "mixed"} {
		b.Run(mode, func(b *testing.B) {
			q := NewQueue(DefaultQueueCapacity, time.Hour)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range DefaultQueueCapacity {
				q.Push(p, rng.Float64(), uint64(i), 0, 0)
			}
			scores := make([]float64, 1<<16)
			for i := range scores {
				scores[i] = rng.Float64()
				if mode == "evict" {
					scores[i] = float64(i) + 1 // rising: always above the minimum
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s := scores[i&(len(scores)-1)]
				if mode == "evict" {
					s += float64(i &^ (len(scores) - 1))
				}
				q.Push(p, s, uint64(i), 0, 1)
				i++
			}
			reportPPS(b)
		})
	}
}

func BenchmarkQueuePopMax(b *testing.B) {
	p := packetOf(b, typicalTx(b))
	q := NewQueue(DefaultQueueCapacity, time.Hour)
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func() {
		for q.Len() < DefaultQueueCapacity {
			q.Push(p, rng.Float64(), 1, 0, 0)
		}
	}
	fill()
	b.ReportAllocs()
	for b.Loop() {
		if q.Len() == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		pkt, e, _ := q.PopMax(1)
		sinkU64 = e.Hash + pkt.Size()
	}
	reportPPS(b)
}

// benchPackets returns n distinct typical packets: different prices and
// limits (so different scores), from different IPv4 sources.
func benchPackets(b *testing.B, n int) []channels.Packet {
	data := typicalTx(b)
	var v View
	if v.Parse(data) != OK {
		b.Fatal("typical tx rejected")
	}
	// Offsets of the limit and price payloads.
	var limitOff, priceOff int
	it := v.Instructions()
	var in Instruction
	for it.Next(data, &in) {
		d := in.Data(data)
		if len(d) > 0 && d[0] == cbSetLimit {
			limitOff = int(in.dataOff) + 1
		}
		if len(d) > 0 && d[0] == cbSetPrice {
			priceOff = int(in.dataOff) + 1
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ps := make([]channels.Packet, n)
	for i := range ps {
		binary.LittleEndian.PutUint32(data[limitOff:], uint32(1000+rng.IntN(1_400_000)))
		binary.LittleEndian.PutUint64(data[priceOff:], uint64(rng.IntN(10_000_000)))
		ps[i].SetData(data)
		ps[i].SetAddr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	return ps
}

// BenchmarkPipeline is the sidecar's per-packet work on one core: check
// the record, parse and sanitize, compute the budget, hash, score, and
// push into a full queue (evicting or refusing). Target ≥ 4 M packets/s.
// "push" only pushes; "push-pop-half" also pops one packet for every two
// pushed, as when sigverify takes half the offered load, which keeps the
// queue turning over (more admissions and evictions).
func BenchmarkPipeline(b *testing.B) {
	for _, popEvery := range []int{0, 2} {
		name := "push"
		if popEvery > 0 {
			name = "push-pop-half"
		}
		b.Run(name, func(b *testing.B) {
			ps := benchPackets(b, 4096)
			e := NewEvaluator(0x5eed)
			q := NewQueue(DefaultQueueCapacity, time.Hour)
			model := 1.0
			// Fill the queue first so pushes below meet a full queue.
			for i := 0; q.Len() < q.Cap(); i++ {
				p := &ps[i%len(ps)]
				info, _ := e.Evaluate(p)
				q.Push(p, Score(model, info.Budget.Fee, info.Budget.CUs)*(1+float64(i)*1e-9), info.Hash, 0, 0)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := &ps[i&(len(ps)-1)]
				i++
				info, r := e.Evaluate(p)
				if r != OK {
					b.Fatal(r)
				}
				q.Push(p, Score(model, info.Budget.Fee, info.Budget.CUs), info.Hash, 0, 1)
				if popEvery > 0 && i%popEvery == 0 {
					pkt, _, _ := q.PopMax(1)
					sinkU64 = pkt.Size()
				}
			}
			reportPPS(b)
			s := q.Stats()
			b.ReportMetric(float64(s.Evicted)/float64(s.Pushed+s.RejectedLow), "evicted/op")
		})
	}
}
