package shaq

import (
	"testing"
	"time"
)

// FuzzHostileHeader: the peer controls every header byte (magic, version,
// mask, indices, waiters). Joining either fails with an error or yields a
// queue whose every view lies inside the element area; no operation
// panics, whatever the indices say.
func FuzzHostileHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0xff, 8, 0x10})
	f.Add([]byte{2, 64, 0x80, 65, 0xff, 128, 3})
	f.Add([]byte{3, 12, 0xff, 13, 0xff, 14, 0xff, 15, 0x7f})
	// A hostile publication cursor stalls an MPMC Commit for the timeout;
	// keep that short here.
	old := publishTimeout
	publishTimeout = time.Millisecond
	f.Cleanup(func() { publishTimeout = old })
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1 || len(in) > 256 {
			return
		}
		mpmc := in[0]%4 == 3
		format := formats[int(in[0])%3]
		var size, header int
		if mpmc {
			size, header = MinimumMPMCFileSize(40, 16), MPMCHeaderSize
		} else {
			size, header = MinimumFileSize(format, 40, 16), format.HeaderSize()
		}
		r := subRegion(t, nil, size)
		var err error
		if mpmc {
			err = CreateMPMC(r, 40)
		} else {
			err = Create(r, format, 40)
		}
		if err != nil {
			t.Fatal(err)
		}
		mem := r.Bytes()
		for k := 1; k+2 <= len(in); k += 2 {
			mem[int(in[k])%header] = in[k+1]
		}
		inBuf := func(s []byte) {
			if len(s) != 40 {
				t.Fatalf("view of %d bytes", len(s))
			}
		}
		if mpmc {
			p, err1 := NewMPMCProducer(r, 40)
			c, err2 := NewMPMCConsumer(r, 40)
			if err1 != nil || err2 != nil {
				return
			}
			for i := 0; i < 40; i++ {
				if s, ok := p.Reserve(); ok {
					inBuf(s)
					p.Commit()
				}
				if s, ok := c.TryRead(); ok {
					inBuf(s)
				}
				c.Finalize()
				_ = p.Len() + c.Len()
			}
			return
		}
		p, err1 := NewProducer(r, format, 40)
		c, err2 := NewConsumer(r, format, 40)
		if err1 != nil || err2 != nil {
			return
		}
		for i := 0; i < 40; i++ {
			if s, ok := p.Reserve(); ok {
				inBuf(s)
			}
			p.Commit()
			p.Sync()
			c.Sync()
			for {
				s, ok := c.TryRead()
				if !ok {
					break
				}
				inBuf(s)
			}
			c.Finalize()
			if p.Len() > p.Capacity() || c.Len() > c.Capacity() {
				t.Fatalf("len %d/%d beyond capacity %d", p.Len(), c.Len(), p.Capacity())
			}
		}
	})
}
