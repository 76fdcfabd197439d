package shaq

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/channels/shm"
)

var formats = []Format{V1_0_2, V3, V4}

// newRegion makes a standard-page memfd of at least size bytes, closed at
// cleanup.
func newRegion(t testing.TB, size int) *shm.Region {
	t.Helper()
	r, err := shm.Create("shaq-test", size, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// newQueue creates a format-f queue of at least capacity elements and
// joins both ends.
func newQueue(t testing.TB, f Format, elem, capacity int) (*shm.Region, *Producer, *Consumer) {
	t.Helper()
	r := newRegion(t, MinimumFileSize(f, elem, capacity))
	if err := Create(r, f, elem); err != nil {
		t.Fatal(err)
	}
	p, err := NewProducer(r, f, elem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsumer(r, f, elem)
	if err != nil {
		t.Fatal(err)
	}
	return r, p, c
}

func TestRoundTrip(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			_, p, c := newQueue(t, f, 40, 64)
			capacity := p.Capacity()
			if capacity < 64 || capacity&(capacity-1) != 0 || c.Capacity() != capacity {
				t.Fatalf("capacity %d / %d", capacity, c.Capacity())
			}
			var next, want uint64
			for round := 0; round < 5; round++ {
				n := 0
				for {
					s, ok := p.Reserve()
					if !ok {
						break
					}
					binary.LittleEndian.PutUint64(s, next)
					next++
					n++
				}
				if round == 0 && n != capacity {
					t.Fatalf("reserved %d before full, want %d", n, capacity)
				}
				if c.Len() == 0 {
					if _, ok := c.TryRead(); ok {
						t.Fatal("read before commit+sync")
					}
				}
				left := c.Len()
				p.Commit()
				if c.Len() != left {
					t.Fatal("consumer saw a commit before sync")
				}
				c.Sync()
				if c.Len() != left+n {
					t.Fatalf("consumer len %d, want %d", c.Len(), left+n)
				}
				// Leave round elements unread, so the ring wraps at odd places.
				for i := 0; i < left+n-round; i++ {
					s, ok := c.TryRead()
					if !ok {
						t.Fatalf("round %d: missing element %d", round, i)
					}
					if got := binary.LittleEndian.Uint64(s); got != want {
						t.Fatalf("element %d, want %d", got, want)
					}
					want++
				}
				c.Finalize()
				p.Sync()
				if p.Len() != round {
					t.Fatalf("producer len %d, want %d", p.Len(), round)
				}
			}
			if p.Err() != nil || c.Err() != nil {
				t.Fatal(p.Err(), c.Err())
			}
		})
	}
}

func TestCapacityFromFileSize(t *testing.T) {
	tests := []struct {
		f              Format
		elem, fileSize int
		want           int
	}{
		// Agave's tpu_to_pack: 4096 x 40-byte messages, file rounded to a
		// page; a 2 MiB huge page holds 32768 of them.
		{V1_0_2, 40, shm.RoundSize(MinimumFileSize(V1_0_2, 40, 4096), false), 4096},
		{V4, 40, shm.RoundSize(MinimumFileSize(V4, 40, 4096), true), 32768},
		{V3, 40, 2 << 20, 32768},
		{V4, 32, 4096, 64},
		{V1_0_2, 48, 4096, 64},
		{V3, 1, 193, 1},
	}
	for _, tt := range tests {
		got, err := Capacity(tt.f, tt.fileSize, tt.elem)
		if err != nil || got != tt.want {
			t.Errorf("%v elem %d file %d: capacity %d, %v; want %d", tt.f, tt.elem, tt.fileSize, got, err, tt.want)
		}
	}
	if _, err := Capacity(V4, 256, 8); !errors.Is(err, ErrFileSize) {
		t.Errorf("header-only file: %v, want ErrFileSize", err)
	}
	if _, err := Capacity(V4, 4096, 0); !errors.Is(err, ErrElemSize) {
		t.Errorf("zero element: %v, want ErrElemSize", err)
	}
}

// TestGoldenHeader checks the bytes against dumps of real shaq queues
// (research note §3.1): one 8-byte element committed in a 4-slot queue.
func TestGoldenHeader(t *testing.T) {
	tests := []struct {
		f       Format
		want    map[int][]byte
		element int
	}{
		{V1_0_2, map[int][]byte{0: {1, 0, 0, 0, 0, 0, 0, 0}, 0x80: {4, 0, 0, 0, 0, 0, 0, 0}, 0x88: {1}}, 0xc0},
		{V3, map[int][]byte{0: []byte("cspsqahs"), 8: {0, 0, 2, 0, 3, 0, 0, 0}, 0x40: {1, 0, 0, 0, 0, 0, 0, 0}}, 0xc0},
		{V4, map[int][]byte{0: []byte("cspsqahs"), 8: {0, 0, 3, 0, 3, 0, 0, 0}, 0x40: {1, 0, 0, 0, 0, 0, 0, 0}, 0xc0: make([]byte, 8)}, 0x100},
	}
	for _, tt := range tests {
		t.Run(tt.f.String(), func(t *testing.T) {
			r := newRegion(t, 4096)
			// Only the first HeaderSize+4*8 bytes count for the capacity.
			size := tt.f.HeaderSize() + 4*8
			sub := subRegion(t, r, size)
			if err := Create(sub, tt.f, 8); err != nil {
				t.Fatal(err)
			}
			p, err := NewProducer(sub, tt.f, 8)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := p.Reserve()
			binary.LittleEndian.PutUint64(s, 0xdead)
			p.Commit()
			b := sub.Bytes()
			for off, want := range tt.want {
				if got := b[off : off+len(want)]; string(got) != string(want) {
					t.Errorf("bytes at %#x: % x, want % x", off, got, want)
				}
			}
			if got := binary.LittleEndian.Uint64(b[tt.element:]); got != 0xdead {
				t.Errorf("element at %#x: %#x", tt.element, got)
			}
		})
	}
}

// subRegion maps a second memfd of exactly size bytes (files are page
// rounded, so the test sizes a fresh file by hand).
func subRegion(t *testing.T, _ *shm.Region, size int) *shm.Region {
	t.Helper()
	r := newRegion(t, size)
	if err := r.File().Truncate(int64(size)); err != nil {
		t.Fatal(err)
	}
	m, err := shm.MapFile(r.File())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestHeaderErrors(t *testing.T) {
	mk := func(f Format, elem int) *shm.Region {
		r := newRegion(t, 4096)
		if err := Create(r, f, elem); err != nil {
			t.Fatal(err)
		}
		return r
	}
	mpmc := newRegion(t, 4096)
	if err := CreateMPMC(mpmc, 24); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		r     *shm.Region
		f     Format
		elem  int
		want  error
		found string
	}{
		{"v3 file joined as v4", mk(V3, 32), V4, 32, ErrVersion, "shaq 3.0.0"},
		{"v4 file joined as v3", mk(V4, 32), V3, 32, ErrVersion, "shaq 4.0.0"},
		{"v4 file joined as 1.0.2", mk(V4, 32), V1_0_2, 32, ErrVersion, "shaq 4.0.0"},
		{"1.0.2 file joined as v4", mk(V1_0_2, 32), V4, 32, ErrMagic, "shaq 1.0.2"},
		{"zeroed file", newRegion(t, 4096), V3, 32, ErrMagic, ""},
		{"other element size", mk(V4, 32), V4, 64, ErrCapacity, ""},
		{"other element size 1.0.2", mk(V1_0_2, 32), V1_0_2, 64, ErrCapacity, ""},
		{"mpmc joined as spsc", mpmc, V4, 24, ErrMagic, "MPMC"},
		{"element larger than file", mk(V4, 32), V4, 8192, ErrFileSize, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewConsumer(tt.r, tt.f, tt.elem)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			var he *HeaderError
			if !errors.As(err, &he) || !strings.Contains(err.Error(), "shaq-test") {
				t.Fatalf("err %v does not name the file", err)
			}
			if !strings.Contains(he.Found, tt.found) {
				t.Fatalf("err %q: found %q, want it to mention %q", err, he.Found, tt.found)
			}
			if _, err := NewProducer(tt.r, tt.f, tt.elem); !errors.Is(err, tt.want) {
				t.Fatalf("producer err %v", err)
			}
		})
	}
	if _, err := NewMPMCConsumer(mk(V4, 24), 24); !errors.Is(err, ErrMagic) {
		t.Fatalf("spsc joined as mpmc: %v", err)
	}
}

func TestCorruptPeerIndex(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			_, p, c := newQueue(t, f, 16, 16)
			// The "producer" publishes an index far beyond the capacity.
			p.cachedWrite = 1 << 40
			p.Commit()
			c.Sync()
			if !errors.Is(c.Err(), ErrCorrupt) {
				t.Fatalf("consumer err %v", c.Err())
			}
			if _, ok := c.TryRead(); ok {
				t.Fatal("read from a corrupt queue")
			}
			c.cachedRead = 5
			c.Finalize()
			p.Sync()
			if !errors.Is(p.Err(), ErrCorrupt) {
				t.Fatalf("producer err %v", p.Err())
			}
		})
	}
}

// TestWaitWakes: a consumer sleeping in Wait is woken by Commit; on V4 via
// the futex (the wait would otherwise last the whole timeout).
func TestWaitWakes(t *testing.T) {
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			_, p, c := newQueue(t, f, 8, 8)
			if c.Wait(time.Millisecond) {
				t.Fatal("wait on an empty queue succeeded")
			}
			done := make(chan time.Duration)
			go func() {
				start := time.Now()
				ok := c.Wait(10 * time.Second)
				if !ok {
					done <- -1
					return
				}
				done <- time.Since(start)
			}()
			time.Sleep(20 * time.Millisecond)
			s, _ := p.Reserve()
			s[0] = 7
			p.Commit()
			d := <-done
			if d < 0 || d > 5*time.Second {
				t.Fatalf("wait returned after %v", d)
			}
			s, ok := c.TryRead()
			if !ok || s[0] != 7 {
				t.Fatal("no element after wait")
			}
		})
	}
}

func TestMPMC(t *testing.T) {
	for _, f := range []Format{V3, V4} {
		t.Run(f.String(), func(t *testing.T) { testMPMC(t, f) })
	}
	if err := CreateMPMCFormat(newRegion(t, 4096), V1_0_2, 24); !errors.Is(err, ErrFormat) {
		t.Errorf("1.0.2 MPMC: %v", err)
	}
	v3 := newRegion(t, 4096)
	if err := CreateMPMCFormat(v3, V3, 24); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMPMCConsumer(v3, 24); !errors.Is(err, ErrVersion) {
		t.Errorf("3.0.0 MPMC joined as 4.0.0: %v", err)
	}
}

func testMPMC(t *testing.T, f Format) {
	const producers, consumers, per = 3, 3, 5000
	// Goroutines of one process take turns publishing; on an overloaded
	// machine (the race detector, CI sharing two cores) one may be
	// descheduled past the 1 s that guards against a dead peer, which
	// would stall the queue for good. This test is about ordering, not
	// dead peers (FuzzHostileHeader drives stalled cursors).
	old := publishTimeout
	publishTimeout = time.Minute
	t.Cleanup(func() { publishTimeout = old })
	// Every loop below gives up at this deadline, so a lost element fails
	// the test instead of hanging it.
	deadline := time.Now().Add(2 * time.Minute)
	r := newRegion(t, MinimumMPMCFileSizeFormat(f, 24, 64))
	if err := CreateMPMCFormat(r, f, 24); err != nil {
		t.Fatal(err)
	}
	var seen sync.Map
	var wg sync.WaitGroup
	var got [consumers]int
	stop := make(chan struct{})
	for i := 0; i < consumers; i++ {
		c, err := NewMPMCConsumerFormat(r, f, 24)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				s, ok := c.TryRead()
				if !ok {
					select {
					case <-stop:
						c.Finalize()
						if c.Len() == 0 {
							return
						}
					default:
					}
					if time.Now().After(deadline) {
						t.Errorf("consumer %d: gave up with %d read (err %v)", i, got[i], c.Err())
						return
					}
					c.Wait(time.Millisecond)
					continue
				}
				v := binary.LittleEndian.Uint64(s)
				if _, dup := seen.LoadOrStore(v, true); dup {
					t.Errorf("value %d read twice", v)
				}
				got[i]++
			}
		}(i)
	}
	var pw sync.WaitGroup
	for i := 0; i < producers; i++ {
		p, err := NewMPMCProducerFormat(r, f, 24)
		if err != nil {
			t.Fatal(err)
		}
		pw.Add(1)
		go func(i int) {
			defer pw.Done()
			for n := 0; n < per; {
				s, ok := p.Reserve()
				if !ok {
					p.Commit()
					if p.Err() != nil || time.Now().After(deadline) {
						t.Errorf("producer %d: gave up after %d of %d (err %v)", i, n, per, p.Err())
						return
					}
					time.Sleep(10 * time.Microsecond)
					continue
				}
				binary.LittleEndian.PutUint64(s, uint64(i*per+n))
				p.Commit()
				n++
			}
			if p.Err() != nil {
				t.Error(p.Err())
			}
		}(i)
	}
	pw.Wait()
	close(stop)
	wg.Wait()
	total := 0
	for _, n := range got {
		total += n
	}
	if total != producers*per {
		t.Fatalf("read %d of %d", total, producers*per)
	}
}

// TestAllocs: the per-message verbs allocate nothing.
func TestAllocs(t *testing.T) {
	for _, f := range formats {
		_, p, c := newQueue(t, f, 40, 64)
		n := testing.AllocsPerRun(1000, func() {
			s, _ := p.Reserve()
			s[0] = 1
			p.Commit()
			p.Sync()
			c.Sync()
			if _, ok := c.TryRead(); !ok {
				panic("empty")
			}
			c.Finalize()
		})
		if n != 0 {
			t.Errorf("%v: %v allocs per message", f, n)
		}
	}
	r := newRegion(t, MinimumMPMCFileSize(24, 64))
	if err := CreateMPMC(r, 24); err != nil {
		t.Fatal(err)
	}
	mp, _ := NewMPMCProducer(r, 24)
	mc, _ := NewMPMCConsumer(r, 24)
	n := testing.AllocsPerRun(1000, func() {
		s, _ := mp.Reserve()
		s[0] = 1
		mp.Commit()
		if _, ok := mc.TryRead(); !ok {
			panic("empty")
		}
		mc.Finalize()
	})
	if n != 0 {
		t.Errorf("mpmc: %v allocs per message", n)
	}
}

func TestDetect(t *testing.T) {
	for _, f := range formats {
		r := newRegion(t, 4096)
		if err := Create(r, f, 40); err != nil {
			t.Fatal(err)
		}
		if got, ok := Detect(r.Bytes()); !ok || got != f {
			t.Errorf("%v detected as %v, %v", f, got, ok)
		}
	}
	if _, ok := Detect(make([]byte, 4096)); ok {
		t.Error("zeroes detected as a queue")
	}
	if _, ok := Detect(make([]byte, 10)); ok {
		t.Error("short header detected")
	}
}
