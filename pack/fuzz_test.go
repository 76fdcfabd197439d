package pack

import (
	"testing"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/score"
)

// FuzzKeysAndCost feeds arbitrary transaction bytes and resolved lookup
// keys (both come from outside: the TPU and a check worker's response)
// through the lock set and the cost estimate: no panic, no more than
// MaxTxLocks keys, writable keys first, and a cost no component of which
// passes its bound.
func FuzzKeysAndCost(f *testing.F) {
	seeds := []testTx{
		{nreq: 1, nrou: 1, keys: []Pubkey{key(1), key(2), systemProgram}, ixs: []testIx{{prog: 2, accs: []byte{0, 1}, data: []byte{2, 0, 0, 0}}}},
		{v0: true, nreq: 1, nrou: 1, keys: []Pubkey{key(1), score.ComputeBudgetProgram}, ixs: []testIx{{prog: 1, data: cbLimit(300)}},
			luts: []testLookup{{table: key(9), writable: []byte{0, 1}, readonly: []byte{2}}}},
		{nreq: 1, nrou: 1, keys: []Pubkey{key(1), score.Ed25519Program}, ixs: []testIx{{prog: 1, data: []byte{255}}}},
	}
	for _, s := range seeds {
		f.Add(s.bytes(), make([]byte, 64), uint16(2), false)
	}
	f.Add([]byte{}, []byte{}, uint16(0), true)
	p := DefaultCostParams()
	f.Fuzz(func(t *testing.T, data, resolved []byte, split uint16, vote bool) {
		var v score.View
		var ks Keys
		if v.Parse(data) != score.OK {
			if err := ks.FromView(&v, data, nil, nil); err == nil {
				t.Fatal("FromView accepted an unparsed view")
			}
			if _, err := EstimateCost(&v, data, score.Budget{}, vote, p); err == nil {
				t.Fatal("EstimateCost accepted an unparsed view")
			}
			return
		}
		cut := min(int(split)*32, len(resolved))
		err := ks.FromView(&v, data, resolved[:cut], resolved[cut:])
		if ks.Len() > MaxTxLocks || ks.NumWritable() > ks.Len() {
			t.Fatalf("keys %d writable %d", ks.Len(), ks.NumWritable())
		}
		if err == nil && ks.Len() != v.NumStaticKeys()+cut/32+(len(resolved)-cut)/32 {
			t.Fatalf("FromView kept %d keys of %d static + resolved", ks.Len(), v.NumStaticKeys())
		}
		// A lock set is only ever complete: every lookup index resolved.
		if nw, nr := v.NumLookupAccounts(); err == nil && (cut != 32*nw || len(resolved)-cut != 32*nr) {
			t.Fatalf("FromView accepted %d+%d resolved bytes for %d+%d lookup indexes", cut, len(resolved)-cut, nw, nr)
		}
		b, r := v.Budget(data, score.DefaultFeeParams())
		if r != score.OK {
			return
		}
		c, err := EstimateCost(&v, data, b, vote, p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Programs > p.MaxComputeUnitLimit || c.WriteLock > 256*p.WriteLockCost ||
			c.DataBytes > 1232/p.InstructionDataBytesPerUnit || c.LoadedAccounts > (64<<20)/p.AccountDataPageSize*p.HeapCostPerPage {
			t.Fatalf("cost out of bounds: %+v", c)
		}
	})
}

// FuzzScheduler drives a scheduler with an arbitrary sequence of
// operations — candidates over a small key space, flushes, finishes with
// arbitrary (also stale or malformed) batch references and results,
// progress messages — and checks that it never panics, never leaks a
// lock and never double-books a batch slot.
func FuzzScheduler(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add([]byte{3, 0, 0, 0, 0, 1, 2, 0, 1, 2, 3, 4, 1, 1, 1, 1, 2, 2, 2, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		p := DefaultParams(3)
		p.Depth, p.BatchSize, p.LockAccounts = 2, 4, 16
		p.Budget.Accounts = 8
		s, err := NewScheduler(p)
		if err != nil {
			t.Fatal(err)
		}
		var live []BatchRef
		var res [MaxBatch]ExecResult
		var ks Keys
		slot := uint64(1)
		for i := 0; i+3 < len(ops); i += 4 {
			op, a, b, c := ops[i]%5, ops[i+1], ops[i+2], ops[i+3]
			switch op {
			case 0: // progress
				if a&1 == 1 {
					slot++
				}
				s.OnProgress(Progress{LeaderState: bindings.LeaderState(b % 3), CurrentSlot: slot, RemainingCostUnits: uint64(c) << 14})
			case 1, 2: // candidate
				ks.Reset()
				for j := range 1 + int(a%4) {
					k := key(uint64((b >> j) & 7))
					if (c>>j)&1 == 1 {
						ks.AddWritable(&k)
					} else {
						ks.AddReadonly(&k)
					}
				}
				s.Try(uint64(i), &ks, uint64(c)<<10, a&0x80 != 0)
			case 3: // flush
				live = append(live, s.Flush()...)
			case 4: // finish, maybe with a bad ref or result count
				if len(live) == 0 {
					_ = s.Finish(BatchRef{Index: int32(a) - 3, Serial: uint32(b)}, nil)
					continue
				}
				k := int(a) % len(live)
				ref := live[k]
				n := len(s.TxIDs(ref))
				if c&3 == 3 {
					n = int(b % 6)
				}
				for j := range n {
					res[j] = ExecResult{Reason: bindings.NotIncludedReason(b), CostUnits: uint64(c) << 8}
				}
				_ = s.Finish(ref, res[:n])
				live = append(live[:k], live[k+1:]...)
			}
		}
		live = append(live, s.Flush()...)
		for _, ref := range live {
			if err := s.Finish(ref, nil); err != nil {
				t.Fatalf("finishing a live batch: %v", err)
			}
		}
		if s.Locks().Len() != 0 {
			t.Fatalf("%d accounts locked after every batch finished", s.Locks().Len())
		}
		if len(s.free) != len(s.batches) {
			t.Fatalf("%d of %d batch slots free after every batch finished", len(s.free), len(s.batches))
		}
	})
}
