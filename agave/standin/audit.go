package standin

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// BlockKind is what a block the stand-in handed to the client holds.
type BlockKind uint8

// Kinds of blocks the client must free.
const (
	BlockPayload   BlockKind = iota // a transaction in a TpuToPack message
	BlockResponses                  // a response array of a WorkerToPack message
	BlockPubkeys                    // resolved lookup-table addresses of a check response
	numBlockKinds
)

func (k BlockKind) String() string {
	switch k {
	case BlockPayload:
		return "tpu payload"
	case BlockResponses:
		return "response array"
	case BlockPubkeys:
		return "resolved pubkeys"
	}
	return fmt.Sprintf("block kind %d", uint8(k))
}

// Errors of the memory audit.
var (
	// ErrDoubleFree: the client freed a block it had already freed.
	ErrDoubleFree = errors.New("block freed twice")
	// ErrForeignFree: the client freed, into a stand-in slot, an offset
	// the stand-in never handed out.
	ErrForeignFree = errors.New("freed an offset the validator never handed out")
	// ErrLeak: blocks handed to the client were never freed.
	ErrLeak = errors.New("blocks never freed")
)

// AuditError names the offending offset of a bad free.
type AuditError struct {
	Err    error // ErrDoubleFree or ErrForeignFree
	Offset uint64
	Slot   int       // allocator slot whose remote-free list carried it
	Kind   BlockKind // of the block, for a double free
	// Unread is set when the block came back while it carried the
	// unread tpu_to_pack message Unread-1.
	Unread uint64
	// Cause is the allocator's refusal, when it refused the free.
	Cause error
}

func (e *AuditError) Error() string {
	if e.Cause != nil {
		if errors.Is(e.Err, ErrDoubleFree) {
			return fmt.Sprintf("client memory discipline: %s: offset %#x (%s) refused by allocator slot %d: %v", e.Err, e.Offset, e.Kind, e.Slot, e.Cause)
		}
		return fmt.Sprintf("client memory discipline: %s: offset %#x refused by allocator slot %d: %v", e.Err, e.Offset, e.Slot, e.Cause)
	}
	if e.Unread != 0 {
		return fmt.Sprintf("client memory discipline: %s: offset %#x came back while it carried tpu_to_pack message %d, which the client never read (it freed a block it did not hold)",
			e.Err, e.Offset, e.Unread-1)
	}
	if errors.Is(e.Err, ErrDoubleFree) {
		return fmt.Sprintf("client memory discipline: %s at offset %#x (%s, allocator slot %d)", e.Err, e.Offset, e.Kind, e.Slot)
	}
	return fmt.Sprintf("client memory discipline: %s: offset %#x (allocator slot %d)", e.Err, e.Offset, e.Slot)
}

func (e *AuditError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Leak is a block handed out and never freed.
type Leak struct {
	Offset uint64
	Kind   BlockKind
	Slot   int
	// Seq is, for a payload, 1 + the index of the tpu_to_pack message that
	// carried it (0 otherwise).
	Seq uint64 `json:"seq,omitempty"`
}

// Audit tracks every block the stand-in hands to the client (TPU
// payloads, response arrays, resolved-pubkeys arrays) until the client
// frees it back through the allocator's remote-free lists: each must come
// back exactly once. It is safe for concurrent use.
type Audit struct {
	mu       sync.Mutex
	out      map[uint64]Leak      // handed out, not yet back
	back     map[uint64]BlockKind // came back, not handed out again since
	errs     []error
	given    [numBlockKinds]uint64
	returned [numBlockKinds]uint64
}

// maxAuditErrors bounds the violations kept (the first is what matters).
const maxAuditErrors = 64

// NewAudit returns an empty audit.
func NewAudit() *Audit {
	return &Audit{out: make(map[uint64]Leak), back: make(map[uint64]BlockKind)}
}

// Give records that the block at off, allocated from slot, now belongs to
// the client. Handing out an offset that is still out means the
// allocator gave the same block twice: that is recorded as an error too.
func (a *Audit) Give(off uint64, kind BlockKind, slot int) { a.give(off, kind, slot, 0) }

// GivePayload records a TPU payload carried by tpu_to_pack message
// seq-1.
func (a *Audit) GivePayload(off, seq uint64) { a.give(off, BlockPayload, 0, seq) }

func (a *Audit) give(off uint64, kind BlockKind, slot int, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.out[off]; ok {
		a.fail(fmt.Errorf("allocator slot %d handed out offset %#x while it was still out as a %s", slot, off, prev.Kind))
	}
	a.out[off] = Leak{Offset: off, Kind: kind, Slot: slot, Seq: seq}
	delete(a.back, off)
	a.given[kind]++
}

// Take records that the stand-in took a block back itself (it could not
// publish the message that carried it); it was never the client's.
func (a *Audit) Take(off uint64) {
	a.mu.Lock()
	if l, ok := a.out[off]; ok {
		delete(a.out, off)
		a.given[l.Kind]--
	}
	a.mu.Unlock()
}

// Returned records that the client freed off, found on slot's
// remote-free list. Its signature fits rtsalloc's CleanRemoteFrees visit
// callback once slot is bound. For a payload it returns the Seq it was
// given with (0 otherwise), so the feeder can check the client had read
// its message.
func (a *Audit) Returned(slot int, off uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.out[off]; ok {
		delete(a.out, off)
		a.back[off] = l.Kind
		a.returned[l.Kind]++
		return l.Seq
	}
	if k, ok := a.back[off]; ok {
		a.fail(&AuditError{Err: ErrDoubleFree, Offset: off, Slot: slot, Kind: k})
		return 0
	}
	a.fail(&AuditError{Err: ErrForeignFree, Offset: off, Slot: slot})
	return 0
}

// Refused records a remote free of one of slot's blocks that the
// allocator refused (rtsalloc's reject hook): a block freed twice, an
// offset never allocated, or a broken chain; cause is the allocator's
// account of it.
func (a *Audit) Refused(slot int, off uint64, cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := &AuditError{Err: ErrForeignFree, Offset: off, Slot: slot, Cause: cause}
	if l, ok := a.out[off]; ok {
		e.Err, e.Kind = ErrDoubleFree, l.Kind
	} else if k, ok := a.back[off]; ok {
		e.Err, e.Kind = ErrDoubleFree, k
	}
	a.fail(e)
}

// Unread records that the payload at off came back although its message
// (seq-1) was never read: the client freed a block it had not received,
// which is how a double free looks once the allocator has handed the
// block out again.
func (a *Audit) Unread(off, seq uint64) {
	a.mu.Lock()
	a.fail(&AuditError{Err: ErrDoubleFree, Offset: off, Slot: 0, Kind: BlockPayload, Unread: seq})
	a.mu.Unlock()
}

// fail records a violation. REQUIRES: a.mu held.
func (a *Audit) fail(err error) {
	if len(a.errs) < maxAuditErrors {
		a.errs = append(a.errs, err)
	}
}

// Err returns the violations so far (nil if none), joined, first first.
func (a *Audit) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return errors.Join(a.errs...)
}

// Outstanding returns the blocks handed out and not yet freed, by offset.
func (a *Audit) Outstanding() []Leak {
	a.mu.Lock()
	ls := make([]Leak, 0, len(a.out))
	for _, l := range a.out {
		ls = append(ls, l)
	}
	a.mu.Unlock()
	slices.SortFunc(ls, func(x, y Leak) int {
		switch {
		case x.Offset < y.Offset:
			return -1
		case x.Offset > y.Offset:
			return 1
		}
		return 0
	})
	return ls
}

// Final returns the run's verdict: the bad frees, then the leaks (blocks
// still out), each naming its offset; nil when the client returned
// every block exactly once.
func (a *Audit) Final() error {
	err := a.Err()
	ls := a.Outstanding()
	if len(ls) == 0 {
		return err
	}
	const show = 8
	msg := fmt.Sprintf("%d", len(ls))
	for i, l := range ls {
		if i == show {
			msg += ", …"
			break
		}
		msg += fmt.Sprintf(", %#x (%s)", l.Offset, l.Kind)
	}
	return errors.Join(err, fmt.Errorf("client memory discipline: %w: %s", ErrLeak, msg))
}

// AuditCounts is how many blocks of each kind went out and came back.
type AuditCounts struct {
	Given, Returned [numBlockKinds]uint64
	Outstanding     int
	Violations      int
}

// Counts returns the audit's counters.
func (a *Audit) Counts() AuditCounts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AuditCounts{Given: a.given, Returned: a.returned, Outstanding: len(a.out), Violations: len(a.errs)}
}
