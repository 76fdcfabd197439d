package model

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

var sinkF float64

// fullModel returns a model whose tables hold n entries each (MaxIPs =
// MaxSigners = n), with scores spread over four orders of magnitude.
func fullModel(b *testing.B, n int) *IPSigner {
	b.Helper()
	p := DefaultParams()
	p.MaxIPs, p.MaxSigners = n, n
	m := New(p)
	r := rand.New(rand.NewPCG(1, 1))
	var s Snapshot
	for i := range n {
		var sg Signer
		binary.BigEndian.PutUint64(sg[:], uint64(i)*0x9e3779b97f4a7c15)
		s.IPs = append(s.IPs, IPScore{ip4(10, byte(i>>16), byte(i>>8), byte(i)), r.ExpFloat64() * 10})
		s.Signers = append(s.Signers, SignerScore{sg, r.ExpFloat64() * 10})
	}
	m.restore(s)
	return m
}

func BenchmarkForwardHit(b *testing.B) {
	m := fullModel(b, 10_000)
	snap := m.Snapshot()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sinkF += m.Forward(snap.IPs[i%len(snap.IPs)].IP, snap.Signers[(i*7)%len(snap.Signers)].Signer)
	}
}

func BenchmarkForwardMiss(b *testing.B) {
	m := fullModel(b, 10_000)
	var sg Signer
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint32(sg[4:], uint32(i))
		sinkF += m.Forward(ip4(192, 168, byte(i>>8), byte(i)), sg)
	}
}

// BenchmarkLearn400On16k: one 400-row batch on 16 384-entry tables: 60
// new IPs and 60 new signers with 5 observations each enter, 100 rows hit
// known keys, every key is updated, both tables are pruned by 60.
func BenchmarkLearn400On16k(b *testing.B) {
	const n = 16_384
	m := fullModel(b, n)
	snap := m.Snapshot()
	r := rand.New(rand.NewPCG(2, 2))
	batches := make([][]Observation, 64)
	next := uint32(1 << 24)
	for i := range batches {
		batch := make([]Observation, 0, 400)
		for range 60 {
			next++
			var ip [4]byte
			binary.BigEndian.PutUint32(ip[:], next)
			var sg Signer
			binary.BigEndian.PutUint32(sg[28:], next)
			for range 5 {
				batch = append(batch, Observation{IP: IPv4(ip), Signer: sg, Fee: r.Uint64N(1e6), ExecNanos: r.Uint64N(2) * r.Uint64N(1e6)})
			}
		}
		for len(batch) < 400 {
			batch = append(batch, Observation{
				IP: snap.IPs[r.IntN(n)].IP, Signer: snap.Signers[r.IntN(n)].Signer,
				Fee: r.Uint64N(1e6), ExecNanos: r.Uint64N(1e6),
			})
		}
		batches[i] = batch
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Learn(batches[i%len(batches)])
	}
	if st := m.Stats(); st.IPs != n || st.Signers != n {
		b.Fatalf("tables not full: %+v", st)
	}
}

func BenchmarkPenalizeKnown(b *testing.B) {
	m := fullModel(b, 10_000)
	snap := m.Snapshot()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Penalize(snap.IPs[(i*7919)%len(snap.IPs)].IP)
	}
}

// BenchmarkPenalizeNew: every call is an unknown IP (a flood), including
// the amortised prune each time the table reaches 2·MaxIPs.
func BenchmarkPenalizeNew(b *testing.B) {
	m := fullModel(b, 10_000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Penalize(ip4(172, byte(i>>16), byte(i>>8), byte(i)))
	}
}

func BenchmarkObserve(b *testing.B) {
	m := fullModel(b, 10_000)
	snap := m.Snapshot()
	r := rand.New(rand.NewPCG(3, 3))
	obs := make([]Observation, 4096)
	for i := range obs {
		obs[i] = Observation{IP: snap.IPs[r.IntN(len(snap.IPs))].IP, Signer: snap.Signers[r.IntN(len(snap.Signers))].Signer, Fee: r.Uint64N(1e6)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Observe(obs[i%len(obs)]) // one call in 400 learns
	}
}

func BenchmarkSave10k(b *testing.B) {
	m := fullModel(b, 10_000)
	path := filepath.Join(b.TempDir(), "m.bin")
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Save(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad10k(b *testing.B) {
	m := fullModel(b, 10_000)
	path := filepath.Join(b.TempDir(), "m.bin")
	if err := m.Save(path); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}

// floodedModel is fullModel(n) after a flood of penalised new IPs has
// filled the penalty-only table (between MaxIPs and 2·MaxIPs entries).
func floodedModel(b *testing.B, n int) *IPSigner {
	b.Helper()
	m := fullModel(b, n)
	for i := range 3*n + n/2 {
		m.Penalize(ip4(172, byte(i>>16), byte(i>>8), byte(i)))
	}
	return m
}

// BenchmarkForwardPenalized: every call is a penalty-only IP.
func BenchmarkForwardPenalized(b *testing.B) {
	m := floodedModel(b, 10_000)
	snap := m.Snapshot()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sinkF += m.Forward(snap.Penalized[i%len(snap.Penalized)].IP, snap.Signers[(i*7)%len(snap.Signers)].Signer)
	}
}

// BenchmarkPenalizePenalized: every call is a penalty-only IP penalised
// again.
func BenchmarkPenalizePenalized(b *testing.B) {
	m := floodedModel(b, 10_000)
	snap := m.Snapshot()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Penalize(snap.Penalized[(i*7919)%len(snap.Penalized)].IP)
	}
}

// BenchmarkLearn400On16kFlooded: BenchmarkLearn400On16k's batches with a
// penalty-only table of 24 576 entries beside the learned ones.
func BenchmarkLearn400On16kFlooded(b *testing.B) {
	const n = 16_384
	m := floodedModel(b, n)
	r := rand.New(rand.NewPCG(2, 2))
	snap := m.Snapshot()
	batch := make([]Observation, 400)
	for i := range batch {
		batch[i] = Observation{
			IP: snap.IPs[r.IntN(n)].IP, Signer: snap.Signers[r.IntN(n)].Signer,
			Fee: r.Uint64N(1e6), ExecNanos: r.Uint64N(1e6),
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Learn(batch)
	}
	if st := m.Stats(); st.PenalizedIPs < n {
		b.Fatalf("penalty-only table not full: %+v", st)
	}
}
