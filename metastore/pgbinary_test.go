package metastore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// splitCopyTuple parses one binary COPY tuple into its field values.
func splitCopyTuple(t *testing.T, b []byte) ([][]byte, int) {
	t.Helper()
	nf := int(binary.BigEndian.Uint16(b))
	off := 2
	vals := make([][]byte, nf)
	for i := range nf {
		l := int(int32(binary.BigEndian.Uint32(b[off:])))
		off += 4
		vals[i] = b[off : off+l]
		off += l
	}
	return vals, off
}

func TestCopyRowRoundTrip(t *testing.T) {
	for i := range uint64(20) {
		r := testRow(i)
		if i%4 == 3 {
			r = PenaltyRow(RowKind(1+i%8/4), r.Seq, r.ObservedAt, SigverifyChannel, r.IP, r.Seed)
		}
		r.ObservedAt -= r.ObservedAt % 1000 // Postgres keeps µs
		var b [maxCopyRowSize]byte
		n := putCopyRow(b[:], &r)
		vals, used := splitCopyTuple(t, b[:n])
		if used != n {
			t.Fatalf("row %d: tuple %d bytes, parsed %d", i, n, used)
		}
		var got Row
		if err := decodeRow(vals, &got); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if got != r {
			t.Fatalf("row %d:\n got %+v\nwant %+v", i, got, r)
		}
	}
}

func TestPgMicros(t *testing.T) {
	f := func(ns, want int64) {
		t.Helper()
		if got := pgMicros(ns); got != want {
			t.Fatalf("pgMicros(%d) = %d, want %d", ns, got, want)
		}
	}
	f(946_684_800_000_000_000, 0)
	f(946_684_800_000_001_999, 1)
	f(-1, -pgEpochMicros-1) // rounds down before 1970
	f(0, -pgEpochMicros)
}

func TestDecodeRowErrors(t *testing.T) {
	var b [maxCopyRowSize]byte
	r := testRow(1)
	n := putCopyRow(b[:], &r)
	vals, _ := splitCopyTuple(t, b[:n])
	f := func(name string, mutate func(v [][]byte) [][]byte) {
		t.Helper()
		v := mutate(append([][]byte(nil), vals...))
		var got Row
		if err := decodeRow(v, &got); !errors.Is(err, errColumns) {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
	f("too few", func(v [][]byte) [][]byte { return v[:3] })
	f("null seq", func(v [][]byte) [][]byte { v[1] = nil; return v })
	f("short signer", func(v [][]byte) [][]byte { v[5] = v[5][:31]; return v })
	f("text inet", func(v [][]byte) [][]byte { v[4] = []byte("10.0.0.1"); return v })
	f("wide channel", func(v [][]byte) [][]byte { v[3] = make([]byte, 4); return v })
	f("bool", func(v [][]byte) [][]byte { v[10] = nil; return v })
	f("null kind", func(v [][]byte) [][]byte { v[14] = nil; return v })
	f("unknown kind", func(v [][]byte) [][]byte { v[14] = []byte{0, byte(numRowKinds)}; return v })
	f("wide reason", func(v [][]byte) [][]byte { v[16] = make([]byte, 4); return v })
	f("null balance", func(v [][]byte) [][]byte { v[18] = nil; return v })
}

func TestCopyReader(t *testing.T) {
	b1 := &batch{rows: make([]Row, 5)}
	b2 := &batch{rows: make([]Row, 5)}
	for i := range 5 {
		b1.rows[i] = testRow(uint64(i))
		b2.rows[i] = testRow(uint64(i + 5))
	}
	b1.n, b2.n = 5, 2
	for _, chunk := range []int{65536, maxCopyRowSize + len(copyHeader)} {
		c := newCopyReader([]*batch{b1, {rows: nil}, b2})
		var out bytes.Buffer
		buf := make([]byte, chunk)
		for {
			n, err := c.Read(buf)
			out.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		s := out.Bytes()
		if !bytes.HasPrefix(s, copyHeader) || !bytes.HasSuffix(s, copyTrailer) {
			t.Fatalf("chunk %d: missing header or trailer", chunk)
		}
		s = s[len(copyHeader) : len(s)-2]
		for i := range 7 {
			vals, used := splitCopyTuple(t, s)
			s = s[used:]
			var got Row
			if err := decodeRow(vals, &got); err != nil {
				t.Fatal(err)
			}
			if got.Seq != uint64(i) {
				t.Fatalf("chunk %d: tuple %d has seq %d", chunk, i, got.Seq)
			}
		}
		if len(s) != 0 {
			t.Fatalf("chunk %d: %d trailing bytes", chunk, len(s))
		}
		c.detach()
		if _, err := c.Read(buf); !errors.Is(err, errCopyDetached) {
			t.Fatalf("Read after detach: %v", err)
		}
	}
}

// TestCopyReaderAllocs: encoding rows allocates nothing (the reader itself
// is one allocation per COPY transaction).
func TestCopyReaderAllocs(t *testing.T) {
	b1 := &batch{rows: make([]Row, 100), n: 100}
	bs := []*batch{b1}
	c := newCopyReader(bs)
	buf := make([]byte, 65536)
	allocs := testing.AllocsPerRun(100, func() {
		c.batches, c.bi, c.ri, c.state = bs, 0, 0, copyStateHeader
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per COPY stream", allocs)
	}
}

// FuzzDecodeRow feeds decodeRow column values cut from arbitrary bytes: it
// must return a row or an error, never panic.
func FuzzDecodeRow(f *testing.F) {
	var b [maxCopyRowSize]byte
	r := testRow(3)
	n := putCopyRow(b[:], &r)
	f.Add(b[:n])                                // a valid IPv4 tuple
	r = testRow(5)                              // IPv6
	n = putCopyRow(b[:], &r)                    //
	f.Add(b[:n])                                // a valid IPv6 tuple
	f.Add([]byte{0, 14})                        // 14 fields announced, none present
	f.Add([]byte{0, 1, 0xff, 0xff, 0xff, 0xff}) // one NULL field
	f.Fuzz(func(t *testing.T, data []byte) {
		// Cut data like a COPY tuple, tolerating anything.
		if len(data) < 2 {
			return
		}
		nf := int(binary.BigEndian.Uint16(data)) % 32
		off := 2
		vals := make([][]byte, 0, nf)
		for range nf {
			if off+4 > len(data) {
				break
			}
			l := int(int32(binary.BigEndian.Uint32(data[off:])))
			off += 4
			if l < 0 {
				vals = append(vals, nil)
				continue
			}
			if off+l > len(data) {
				l = len(data) - off
			}
			vals = append(vals, data[off:off+l])
			off += l
		}
		var got Row
		_ = decodeRow(vals, &got)
	})
}
