package metastore

import (
	"testing"
	"time"
)

func testRow(i uint64) Row {
	r := Row{
		ObservedAt: 1_700_000_000_000_000_000 + int64(i)*1000,
		Seq:        i,
		Channel:    uint8(i % 4),
		Fee:        5000 + i,
		CUs:        200_000,
		CUPrice:    i * 7,
		ExecNanos:  i % 3 * 50_000,
		Scheduled:  i%3 != 0,
		Value:      float64(i) / 3,
		Score:      float64(i) * 1.5,
		Hash:       i * 0x9e3779b97f4a7c15,
		Seed:       42,
	}
	if i%5 == 0 {
		r.IP = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}
	} else {
		r.IP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
	}
	r.Signer[0] = byte(i)
	r.Signer[31] = byte(i >> 8)
	return r
}

// drain takes every full batch waiting, returns its rows and releases it.
func drain(h *Handoff) []Row {
	var out []Row
	for {
		select {
		case b := <-h.full:
			out = append(out, b.rows[:b.n]...)
			h.release(b)
		default:
			return out
		}
	}
}

func TestHandoffOrderAndFlush(t *testing.T) {
	h := NewHandoff(HandoffConfig{BatchRows: 4, Batches: 3, FlushInterval: time.Millisecond})
	var got []Row
	for i := range uint64(10) {
		r := testRow(i)
		if !h.Offer(&r) {
			t.Fatalf("row %d dropped", i)
		}
		got = append(got, drain(h)...)
	}
	if len(got) != 8 {
		t.Fatalf("%d rows handed over before flush, want 8", len(got))
	}
	h.Tick(testRow(9).ObservedAt) // younger than the interval: no flush
	if rows := drain(h); len(rows) != 0 {
		t.Fatalf("Tick flushed a young batch")
	}
	h.Tick(testRow(8).ObservedAt + int64(time.Millisecond))
	got = append(got, drain(h)...)
	for i, r := range got {
		if r != testRow(uint64(i)) {
			t.Fatalf("row %d differs", i)
		}
	}
	if len(got) != 10 || h.Offered() != 10 || h.Dropped() != 0 {
		t.Fatalf("got %d rows, offered %d, dropped %d", len(got), h.Offered(), h.Dropped())
	}
	h.Flush() // nothing current: no-op
	if rows := drain(h); len(rows) != 0 {
		t.Fatal("empty flush handed rows over")
	}
}

// TestHandoffDropsWhenWriterStalls: with no writer draining, Offer keeps
// returning promptly and counts exactly the rows that found no batch.
func TestHandoffDropsWhenWriterStalls(t *testing.T) {
	h := NewHandoff(HandoffConfig{BatchRows: 8, Batches: 4})
	const n = 100
	accepted := 0
	for i := range uint64(n) {
		r := testRow(i)
		if h.Offer(&r) {
			accepted++
		}
	}
	if accepted != 32 || h.Dropped() != n-32 {
		t.Fatalf("accepted %d dropped %d, want 32 and %d", accepted, h.Dropped(), n-32)
	}
	// The writer catches up: offers succeed again.
	rows := drain(h)
	if len(rows) != 32 {
		t.Fatalf("drained %d rows", len(rows))
	}
	r := testRow(1000)
	if !h.Offer(&r) {
		t.Fatal("offer after drain dropped")
	}
}

func TestHandoffAllocs(t *testing.T) {
	h := NewHandoff(HandoffConfig{BatchRows: 16, Batches: 4})
	r := testRow(3)
	allocs := testing.AllocsPerRun(10000, func() {
		h.Offer(&r)
		h.Tick(r.ObservedAt)
		if h.offered%50 == 0 {
			h.Flush()
			drain(h)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
	// The stalled path (no free batch) allocates nothing either.
	allocs = testing.AllocsPerRun(1000, func() { h.Offer(&r) })
	if allocs != 0 || h.Dropped() == 0 {
		t.Fatalf("%v allocations per stalled offer (dropped %d)", allocs, h.Dropped())
	}
}

// TestHandoffConcurrent runs a writer goroutine against the loop under the
// race detector: every row is either received once or counted as dropped.
func TestHandoffConcurrent(t *testing.T) {
	h := NewHandoff(HandoffConfig{BatchRows: 64, Batches: 4})
	done := make(chan int)
	stop := make(chan struct{})
	go func() {
		n := 0
		next := uint64(0)
		for {
			select {
			case b := <-h.full:
				for _, r := range b.rows[:b.n] {
					if r.Seq < next {
						t.Errorf("row %d after %d", r.Seq, next)
					}
					next = r.Seq + 1
				}
				n += b.n
				h.release(b)
			case <-stop:
				n += len(drain(h))
				done <- n
				return
			}
		}
	}()
	const total = 200_000
	for i := range uint64(total) {
		r := Row{Seq: i}
		h.Offer(&r)
	}
	h.Flush()
	close(stop)
	got := <-done
	if uint64(got)+h.Dropped() != total {
		t.Fatalf("received %d + dropped %d != %d", got, h.Dropped(), total)
	}
	t.Logf("received %d, dropped %d", got, h.Dropped())
}
