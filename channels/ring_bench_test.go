package channels

import (
	"sync"
	"testing"
	"time"
)

// benchRing opens a producer and a consumer on a fresh ring of the
// production capacity.
func benchRing[R Record](b *testing.B, capacity uint64) (*Producer[R], *Consumer[R]) {
	b.Helper()
	o := testOptions(b)
	s := specFor[R]("bench", capacity)
	p, err := OpenProducer[R](o, s)
	if err != nil {
		b.Fatal(err)
	}
	c, err := OpenConsumer[R](o, s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(); c.Close() })
	return p, c
}

// reportRate reports records/s and GB/s for n records of size bytes.
func reportRate(b *testing.B, n uint64, size int) {
	b.Helper()
	sec := b.Elapsed().Seconds()
	if sec <= 0 {
		return
	}
	b.ReportMetric(float64(n)/sec, "records/s")
	b.ReportMetric(float64(n)*float64(size)/sec/1e9, "GB/s")
}

func benchPush[R Record](b *testing.B) {
	p, _ := benchRing[R](b, 32768)
	var r R
	fill(&r, 7)
	b.SetBytes(int64(recordSize[R]()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.Push(&r)
	}
	p.Sync()
	reportRate(b, uint64(b.N), recordSize[R]())
}

// BenchmarkPush measures the producer alone (the ring is overwritten as
// it goes; nobody reads).
func BenchmarkPush(b *testing.B) {
	b.Run("packet", benchPush[Packet])
	b.Run("meta", benchPush[RemainingMeta])
	b.Run("signature", benchPush[Signature])
}

func benchPop[R Record](b *testing.B) {
	const capacity = 32768
	p, c := benchRing[R](b, capacity)
	var r R
	fill(&r, 7)
	refill := func() {
		for range capacity - burst(capacity) { // a full window: nothing is skipped
			p.Push(&r)
		}
		p.Sync()
	}
	b.SetBytes(int64(recordSize[R]()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !c.Pop(&r) {
			b.StopTimer()
			refill()
			b.StartTimer()
			if !c.Pop(&r) {
				b.Fatal("nothing after refill")
			}
		}
	}
	b.StopTimer()
	if c.Skipped() != 0 {
		b.Fatalf("skipped %d", c.Skipped())
	}
	reportRate(b, uint64(b.N), recordSize[R]())
}

// BenchmarkPop measures the consumer alone, on records published in
// windows refilled outside the timer.
func BenchmarkPop(b *testing.B) {
	b.Run("packet", benchPop[Packet])
	b.Run("meta", benchPop[RemainingMeta])
	b.Run("signature", benchPop[Signature])
}

// BenchmarkGoroutines moves b.N packets from a producer goroutine to a
// consumer goroutine. "lossless": the producer waits when half a ring
// ahead of the consumer's head, so every record arrives; "flat-out": the
// producer never waits (production mode) and the consumer counts what it
// lost; records/s counts records delivered.
func BenchmarkGoroutines(b *testing.B) {
	for _, throttle := range []bool{true, false} {
		name := "lossless"
		if !throttle {
			name = "flat-out"
		}
		b.Run(name+"/packet", func(b *testing.B) {
			p, c := benchRing[Packet](b, 32768)
			total := uint64(b.N)
			b.SetBytes(PacketSize)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r Packet
				fill(&r, 1)
				never := func() bool { return false }
				for range total {
					if throttle {
						p.pushThrottled(&r, never)
					} else {
						p.Push(&r)
					}
				}
				p.Sync()
			}()
			var r Packet
			for c.Read()+c.Skipped() < total {
				c.Pop(&r)
			}
			wg.Wait()
			b.StopTimer()
			if throttle && c.Skipped() != 0 {
				b.Fatalf("lossless run skipped %d", c.Skipped())
			}
			reportRate(b, c.Read(), PacketSize)
			b.ReportMetric(float64(c.Skipped())/float64(total)*100, "%lost")
		})
	}
}

// BenchmarkCrossProcess moves b.N packets from a child process (the
// producer, throttled on the head so that nothing is lost) to this one.
// The child's start-up is outside the timer.
func BenchmarkCrossProcess(b *testing.B) {
	b.Run("packet", func(b *testing.B) {
		const capacity = 32768
		o := testOptions(b)
		s := specFor[Packet](childName, capacity)
		if _, err := Create(o, s); err != nil {
			b.Fatal(err)
		}
		c, err := OpenConsumer[Packet](o, s)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ch := startChild(b, "produce", o, "packet", capacity, uint64(b.N), true, nil)
		deadline := time.Now().Add(20 * time.Second)
		for !c.ProducerAlive() { // the child beats once it has joined
			if time.Now().After(deadline) {
				b.Fatalf("child never joined: %s", ch.stderr.String())
			}
			time.Sleep(50 * time.Microsecond)
		}
		var r Packet
		total := uint64(b.N)
		b.SetBytes(PacketSize)
		b.ReportAllocs()
		b.ResetTimer()
		for spins := 0; c.Read()+c.Skipped() < total; spins++ {
			if !c.Pop(&r) {
				c.Beat() // the child starts pushing when it sees this
				if spins&4095 == 0 && time.Now().After(deadline.Add(time.Minute)) {
					b.Fatalf("timeout: read %d of %d", c.Read(), total)
				}
			}
		}
		b.StopTimer()
		ch.wait(b)
		if c.Skipped() != 0 {
			b.Fatalf("skipped %d", c.Skipped())
		}
		if _, err := seqOf(&r); err != nil {
			b.Fatal(err)
		}
		reportRate(b, c.Read(), PacketSize)
	})
}
