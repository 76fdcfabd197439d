package sim

import (
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

var sinkEvent event

// BenchmarkGenerate measures packet production without the ring: draw,
// copy the template, patch, sign.
func BenchmarkGenerate(b *testing.B) {
	c := DefaultConfig()
	g := newTestGenerator(b, &c)
	var p channels.Packet
	b.ReportAllocs()
	b.SetBytes(channels.PacketSize)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sinkEvent = g.next(&p)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "packets/s")
}

// BenchmarkProduce measures what the producer goroutine does per packet:
// generate and push into a tpu_to_qos ring on /dev/shm (or a temporary
// directory when /dev/shm is absent).
func BenchmarkProduce(b *testing.B) {
	c := DefaultConfig()
	g := newTestGenerator(b, &c)
	o := channels.Options{Prefix: "simbench-", ShmDir: b.TempDir()}
	prod, err := channels.OpenProducer[channels.Packet](o, channels.Table[0])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = prod.Close() })
	var p channels.Packet
	b.ReportAllocs()
	b.SetBytes(channels.PacketSize)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sinkEvent = g.next(&p)
		prod.Push(&p)
		if i&255 == 255 {
			prod.Sync()
		}
	}
	prod.Sync()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "packets/s")
}

var sinkBool bool

// BenchmarkSigverify measures the mock sigverify of one default-size
// transaction.
func BenchmarkSigverify(b *testing.B) {
	data, _, _ := testTx(b, false, 100_000, 1_000_000, 1, 2, 3)
	var sg signer
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		sinkBool = sg.verify(data)
	}
}

// BenchmarkDecode measures decodeTx on a v0 transaction.
func BenchmarkDecode(b *testing.B) {
	data, _, _ := testTx(b, true, 100_000, 1_000_000, 1, 2, 3)
	var d decoded
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sinkBool = decodeTx(data, &d)
	}
}
