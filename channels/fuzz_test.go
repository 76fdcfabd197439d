package channels

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConsumer writes arbitrary header values and record bytes into a
// ring file, joins it and pops, changing the tail under the consumer
// twice. Whatever the file says, joining must fail with a sentinel *Error
// or succeed; popping must not panic, must only return bytes of a slot
// inside the ring (the one its read index names), and must account for
// every record it passes (read + skipped only grow).
func FuzzConsumer(f *testing.F) {
	const valid = 0 // magicSel: Magic and the spec's capacity
	// kind, capLog, magicSel, sizeSel, capField, tail, tail2, tail3, sizeDelta, pops, records
	type seed struct {
		kind, capLog, magicSel, sizeSel uint8
		capField, tail, tail2, tail3    uint64
		sizeDelta                       uint16
		pops                            uint8
		recs                            []byte
	}
	for _, s := range []seed{
		// A healthy ring: join at 0, five records published, then ten more.
		{0, 3, valid, 0, 0, 0, 5, 15, 0, 20, []byte("abcdefgh")},
		// The tail leaps far ahead: overrun, jump to tail - window.
		{1, 4, valid, 0, 0, 7, 1 << 63, 1<<63 + 3, 0, 40, []byte{1, 2, 3}},
		// The tail goes backwards under the consumer: resync.
		{2, 2, valid, 0, 0, 100, 3, 2, 0, 10, nil},
		// The largest tail there is, then wrap-around to small values.
		{0, 0, valid, 0, 0, 0, ^uint64(0), 1, 0, 50, []byte{0xff}},
		// Magic 0: not initialised.
		{0, 3, 2, 0, 0, 0, 0, 0, 0, 1, nil},
		// Magic of another program: corrupt.
		{1, 3, 4, 0, 0x4142434445464748, 0, 0, 0, 0, 1, nil},
		// Right magic, garbage capacity.
		{2, 3, 1, 0, 12345, 0, 0, 0, 0, 1, nil},
		// File shorter than the ring, and one shorter than the header.
		{0, 3, valid, 1, 0, 0, 0, 0, 1, 1, nil},
		{0, 3, valid, 1, 0, 0, 0, 0, 0xffff, 1, nil},
		// File longer than a page beyond the ring; and page-rounded (valid).
		{1, 5, valid, 2, 0, 0, 0, 0, 5000, 1, nil},
		{1, 5, valid, 3, 0, 0, 9, 9, 0, 12, []byte("x")},
	} {
		f.Add(s.kind, s.capLog, s.magicSel, s.sizeSel, s.capField, s.tail, s.tail2, s.tail3, s.sizeDelta, s.pops, s.recs)
	}
	dir := testDir(f)
	n := 0
	f.Fuzz(func(t *testing.T, kind, capLog, magicSel, sizeSel uint8, capField, tail, tail2, tail3 uint64, sizeDelta uint16, pops uint8, recs []byte) {
		n++
		path := filepath.Join(dir, fmt.Sprintf("fz%d", n))
		defer os.Remove(path)
		capacity := uint64(2) << (capLog % 7) // 2..128
		switch kind % 3 {
		case 0:
			fuzzConsume[Packet](t, path, capacity, magicSel, sizeSel, capField, tail, tail2, tail3, sizeDelta, pops, recs)
		case 1:
			fuzzConsume[RemainingMeta](t, path, capacity, magicSel, sizeSel, capField, tail, tail2, tail3, sizeDelta, pops, recs)
		default:
			fuzzConsume[Signature](t, path, capacity, magicSel, sizeSel, capField, tail, tail2, tail3, sizeDelta, pops, recs)
		}
	})
}

func fuzzConsume[R Record](t *testing.T, path string, capacity uint64, magicSel, sizeSel uint8,
	capField, tail, tail2, tail3 uint64, sizeDelta uint16, pops uint8, recs []byte) {
	o := Options{ShmDir: filepath.Dir(path)}
	s := specFor[R](filepath.Base(path), capacity)
	minSize := s.MinSize()
	size := minSize
	switch sizeSel % 4 {
	case 1:
		size -= int64(sizeDelta) % minSize
	case 2:
		size += int64(sizeDelta)
	case 3:
		size = roundUp(minSize, int64(os.Getpagesize()))
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	if size >= HeaderSize {
		le.PutUint64(b[offTail:], tail)
		le.PutUint64(b[offHead:], tail3)
		capWant := capacity
		if magicSel&1 != 0 {
			capWant = capField
		}
		le.PutUint64(b[offCapacity:], capWant)
		switch (magicSel >> 1) % 3 {
		case 0:
			le.PutUint64(b[offMagic:], Magic)
		case 1:
			// magic 0
		default:
			le.PutUint64(b[offMagic:], capField^0x5a5a5a5a5a5a5a5a)
		}
		if len(recs) > 0 {
			for i := HeaderSize; i < len(b); i += len(recs) {
				copy(b[i:], recs)
			}
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, ierr := Inspect(o, s)
	c, err := OpenConsumer[R](o, s)
	if (err == nil) != (ierr == nil) {
		t.Fatalf("join says %v, Inspect says %v", err, ierr)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || sentinelName(e.Err) == "other: "+e.Err.Error() {
			t.Fatalf("join error %v is not a sentinel *Error", err)
		}
		if c != nil {
			t.Fatal("both a consumer and an error")
		}
		return
	}
	defer c.Close()
	if c.Next() != tail {
		t.Fatalf("joined at %d, tail is %d", c.Next(), tail)
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var r R
	recSize := uint64(s.RecordSize)
	for _, newTail := range []uint64{tail2, tail3} {
		var w [8]byte
		le.PutUint64(w[:], newTail)
		if _, err := file.WriteAt(w[:], offTail); err != nil { // seen through the shared mapping
			t.Fatal(err)
		}
		for range pops % 64 {
			before := c.Read() + c.Skipped()
			if !c.Pop(&r) {
				continue
			}
			if after := c.Read() + c.Skipped(); after <= before && c.Resyncs() == 0 {
				t.Fatalf("read+skipped went from %d to %d", before, after)
			}
			slot := (c.Next() - 1) & (capacity - 1)
			off := HeaderSize + slot*recSize
			if off+recSize > uint64(len(b)) {
				t.Fatalf("slot %d outside the ring", slot)
			}
			if !bytes.Equal(significant(bytesOf(&r)), significant(b[off:off+recSize])) {
				t.Fatalf("popped bytes differ from slot %d", slot)
			}
			if d := newTail - (c.Next() - 1); newTail < c.Next() || d > capacity-burst(capacity) {
				t.Fatalf("returned record %d outside the window of tail %d", c.Next()-1, newTail)
			}
		}
	}
}
