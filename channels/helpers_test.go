package channels

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// testDir returns a fresh directory for channel files, on /dev/shm when
// there is one (tmpfs, like production), removed when the test ends.
func testDir(tb testing.TB) string {
	tb.Helper()
	base := ""
	if fi, err := os.Stat(DefaultShmDir); err == nil && fi.IsDir() {
		base = DefaultShmDir
	}
	dir, err := os.MkdirTemp(base, "qos-channels-test-")
	if err != nil {
		tb.Fatalf("temp dir: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// testOptions returns options whose files live in a fresh test directory.
func testOptions(tb testing.TB) Options {
	tb.Helper()
	return Options{ShmDir: testDir(tb), Prefix: "t_"}
}

// specFor returns a test spec for record type R.
func specFor[R Record](name string, capacity uint64) Spec {
	return Spec{Name: name, Capacity: capacity, RecordSize: recordSize[R]()}
}

// bytesOf returns the bytes of a record.
func bytesOf[R Record](r *R) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(r)), unsafe.Sizeof(*r))
}

// fill writes the test pattern of sequence number seq into r: every 8-byte
// word holds seq with the word's index in its top byte, so that a record
// mixing two writes (a torn read) is always detected.
func fill[R Record](r *R, seq uint64) {
	b := bytesOf(r)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], seq^uint64(i/8)<<56)
	}
}

// seqOf checks the test pattern of r and returns its sequence number.
func seqOf[R Record](r *R) (uint64, error) {
	b := bytesOf(r)
	seq := binary.LittleEndian.Uint64(b)
	for i := 8; i+8 <= len(b); i += 8 {
		if w := binary.LittleEndian.Uint64(b[i:]); w != seq^uint64(i/8)<<56 {
			return seq, fmt.Errorf("torn record: word 0 says seq %d, word %d says %d", seq, i/8, w^uint64(i/8)<<56)
		}
	}
	return seq, nil
}

// recordKinds names the record types used by table-driven tests and the
// child processes.
var recordKinds = []string{"packet", "meta", "signature"}

// withKind runs f instantiated for the record type named kind.
func withKind(kind string, packet, meta, sig func()) {
	switch kind {
	case "packet":
		packet()
	case "meta":
		meta()
	case "signature":
		sig()
	default:
		panic("unknown record kind " + kind)
	}
}

// headNow returns the head stored by the consumer (test throttling).
func (p *Producer[R]) headNow() uint64 { return p.m.head.Load() }

// pushThrottled pushes r, first waiting while the producer is more than
// half a ring ahead of the consumer's stored head, so that no record is
// lost (the consumer stores its head at least every N/4 records and when
// idle, so it can never be a window behind). stop aborts the wait.
func (p *Producer[R]) pushThrottled(r *R, stop func() bool) bool {
	half := (p.mask + 1) / 2
	for spins := 0; p.tail-p.headNow() >= half; spins++ {
		p.Sync()
		if spins&1023 == 1023 && stop() {
			return false
		}
	}
	p.Push(r)
	return true
}

// errString returns err's text or "<nil>".
func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// oneLine fails when an error message spans lines.
func oneLine(tb testing.TB, err error) {
	tb.Helper()
	if strings.ContainsAny(err.Error(), "\n\r") {
		tb.Errorf("error message is not one line: %q", err.Error())
	}
}

// significant returns the bytes of a record that a reader may look at: for
// a packet whose size fits the data area, data[:size] and the metadata
// (Pop copies only those); otherwise the whole record.
func significant(b []byte) []byte {
	if len(b) != PacketSize {
		return b
	}
	n := binary.LittleEndian.Uint64(b[packetSizeOff:])
	if n > PacketDataSize {
		return b
	}
	return append(append([]byte{}, b[:n]...), b[PacketDataSize:]...)
}
