package channels

import (
	"errors"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"unsafe"
)

// faultsOn turns memory faults into panics on the calling goroutine for
// the rest of the test.
func faultsOn(t *testing.T) {
	t.Helper()
	old := debug.SetPanicOnFault(true)
	t.Cleanup(func() { debug.SetPanicOnFault(old) })
}

// caught runs f and returns the value of a panic it raised, or nil.
func caught(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// faultIn requires r to be a memory fault inside the mapping of x.
func faultIn(t *testing.T, r any, faulted func(uintptr) bool) uintptr {
	t.Helper()
	if r == nil {
		t.Fatal("no fault")
	}
	addr, ok := FaultAddr(r)
	if !ok {
		t.Fatalf("panic %v is not a memory fault", r)
	}
	if !faulted(addr) {
		t.Fatalf("fault at %#x not attributed to the channel", addr)
	}
	return addr
}

// checkTruncatedError requires err to be the ErrTruncated *Error of path.
func checkTruncatedError(t *testing.T, err error, path, op, nowSize string) {
	t.Helper()
	var e *Error
	if !errors.Is(err, ErrTruncated) || !errors.As(err, &e) || e.Path != path || e.Op != op {
		t.Fatalf("err = %v, want an *Error ErrTruncated on %s (%s)", err, path, op)
	}
	if msg := err.Error(); !strings.Contains(msg, "the file is now "+nowSize) || !strings.Contains(msg, "qos-cli inspect") {
		t.Fatalf("message does not say the size now (%s) or what to check: %s", nowSize, msg)
	}
}

// TestConsumerSurvivesTruncation: a peer shrinks the file a consumer has
// mapped (to nothing, or to one page that keeps the header): Pop faults,
// the fault is attributed to the consumer, Detach names the file and
// leaves a consumer that reads nothing and closes cleanly, and the file
// can be joined again once it is valid.
func TestConsumerSurvivesTruncation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int64
		now    string
		reinit bool // the header is gone: the producer initialises it again
	}{
		{"to-zero", 0, "0 bytes", true},
		{"to-one-page", 4096, "4096 bytes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faultsOn(t)
			o := testOptions(t)
			s := specFor[Packet]("trunc", 64)
			p, err := OpenProducer[Packet](o, s)
			if err != nil {
				t.Fatal(err)
			}
			c, err := OpenConsumer[Packet](o, s)
			if err != nil {
				t.Fatal(err)
			}
			var r Packet
			for i := range uint64(10) {
				fill(&r, i)
				p.Push(&r)
			}
			p.Sync()
			for range 5 { // record 5 is past the first page
				if !c.Pop(&r) {
					t.Fatal("Pop found nothing")
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			path := o.Path(s.Name)
			truncate(t, path, tc.size)

			addr := faultIn(t, caught(func() { c.Pop(&r) }), c.Faulted)
			if !c.Faulted(0) {
				t.Fatal("a fault with no address not attributed by the file's size")
			}
			derr := c.Detach(addr)
			t.Log(derr)
			checkTruncatedError(t, derr, path, "read", tc.now)
			if !c.Detached() || c.Faulted(addr) || c.Faulted(0) {
				t.Fatal("consumer not detached")
			}
			if r := caught(func() {
				if c.Pop(&r) || c.Lag() != 0 || c.ProducerAlive() {
					t.Error("detached consumer reads something")
				}
				c.Beat()
				c.Commit()
				c.SetMeta(0, 1)
				_ = c.Meta(0)
			}); r != nil {
				t.Fatalf("detached consumer faulted: %v", r)
			}
			if c.Read() != 5 {
				t.Fatalf("read count %d lost on detach", c.Read())
			}
			if err := c.Close(); err != nil {
				t.Fatalf("closing a detached consumer: %v", err)
			}

			// Restore: the file's size, and the header when it was lost.
			truncate(t, path, s.MinSize())
			if tc.reinit {
				if _, err := OpenConsumer[Packet](o, s); !errors.Is(err, ErrNotInitialised) {
					t.Fatalf("join of the zeroed file: %v, want ErrNotInitialised", err)
				}
				p2, err := OpenProducer[Packet](o, s)
				if err != nil || !p2.Created() {
					t.Fatalf("reinitialise: %v (created %v)", err, p2 != nil && p2.Created())
				}
				p2.Close()
			}
			c2, err := OpenConsumer[Packet](o, s)
			if err != nil {
				t.Fatalf("rejoin after restoring: %v", err)
			}
			c2.Close()
		})
	}
}

// TestProducerSurvivesTruncation: the same for a producer, whose Push
// faults when it writes past the new end.
func TestProducerSurvivesTruncation(t *testing.T) {
	faultsOn(t)
	o := testOptions(t)
	s := specFor[Packet]("trunc", 64)
	p, err := OpenProducer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	var r Packet
	for i := range uint64(5) {
		fill(&r, i)
		p.Push(&r)
	}
	p.Sync()
	path := o.Path(s.Name)
	truncate(t, path, 4096)
	addr := faultIn(t, caught(func() { p.Push(&r) }), p.Faulted)
	checkTruncatedError(t, p.Detach(addr), path, "write", "4096 bytes")
	if r := caught(func() {
		for i := range uint64(100) {
			fill(&r, i)
			p.Push(&r)
		}
		p.Sync()
		p.Beat()
		if _, known := p.Unread(); known || p.ConsumerAlive() {
			t.Error("detached producer knows of a consumer")
		}
	}); r != nil {
		t.Fatalf("detached producer faulted: %v", r)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("closing a detached producer: %v", err)
	}
	truncate(t, path, s.MinSize())
	p2, err := OpenProducer[Packet](o, s)
	if err != nil {
		t.Fatalf("rejoin after restoring: %v", err)
	}
	defer p2.Close()
	if p2.Tail() != 5 || p2.Created() {
		t.Fatalf("rejoined at tail %d (created %v), want the published 5", p2.Tail(), p2.Created())
	}
}

// TestCloseTruncated: closing a consumer or producer whose file shrank
// (the fault not seen before) unmaps it, returns ErrTruncated, and leaves
// the goroutine's fault setting as it was, even off.
func TestCloseTruncated(t *testing.T) {
	o := testOptions(t)
	s := specFor[RemainingMeta]("trunc", 64)
	p, err := OpenProducer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenConsumer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	p.Push(&RemainingMeta{}) // unpublished: Close must store the tail
	truncate(t, o.Path(s.Name), 0)
	old := debug.SetPanicOnFault(false)
	defer debug.SetPanicOnFault(old)
	if err := c.Close(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("consumer Close: %v, want ErrTruncated", err)
	}
	if err := p.Close(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("producer Close: %v, want ErrTruncated", err)
	}
	if debug.SetPanicOnFault(false) {
		t.Fatal("Close left panic-on-fault on")
	}
}

// TestFaultAddr: only memory faults are recognised, and a fault outside
// every mapping is not attributed to one.
func TestFaultAddr(t *testing.T) {
	for _, r := range []any{nil, "boom", errors.New("boom"), 42} {
		if _, ok := FaultAddr(r); ok {
			t.Errorf("FaultAddr(%v) ok", r)
		}
	}
	o := testOptions(t)
	s := specFor[RemainingMeta]("other", 8)
	c, err := OpenConsumer[RemainingMeta](o, s)
	if err == nil {
		c.Close()
		t.Fatal("joined a missing file")
	}
	p, err := OpenProducer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var x int
	if p.Faulted(uintptr(unsafe.Pointer(&x))) || p.Faulted(0) {
		t.Fatal("a fault outside the mapping, or with no address while the file is whole, attributed to it")
	}
}
