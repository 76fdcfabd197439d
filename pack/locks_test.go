package pack

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// keysW returns a Keys with the given writable and readonly test keys.
func keysW(w, r []uint64) *Keys {
	ks := new(Keys)
	for _, n := range w {
		k := key(n)
		ks.AddWritable(&k)
	}
	for _, n := range r {
		k := key(n)
		ks.AddReadonly(&k)
	}
	return ks
}

// TestLocksSchedulable walks the cases of ThreadAwareAccountLocks'
// schedulable_threads: each step locks a transaction on a worker (or
// unlocks the step it names) and then asks which workers a probe may go
// to.
func TestLocksSchedulable(t *testing.T) {
	type lockStep struct {
		w, r   []uint64
		worker int
	}
	const n = 4
	all := AllWorkers(n)
	tests := []struct {
		name   string
		held   []lockStep
		probeW []uint64
		probeR []uint64
		want   WorkerSet
	}{
		{"unlocked: any worker", nil, []uint64{1}, []uint64{2}, all},
		{"write-locked: only the writer, to write", []lockStep{{w: []uint64{1}, worker: 2}}, []uint64{1}, nil, only(2)},
		{"write-locked: only the writer, to read", []lockStep{{w: []uint64{1}, worker: 2}}, nil, []uint64{1}, only(2)},
		{"read-locked by one: reads anywhere", []lockStep{{r: []uint64{1}, worker: 1}}, nil, []uint64{1}, all},
		{"read-locked by one: writes only there", []lockStep{{r: []uint64{1}, worker: 1}}, []uint64{1}, nil, only(1)},
		{"read-locked by two: no writer", []lockStep{{r: []uint64{1}, worker: 1}, {r: []uint64{1}, worker: 3}}, []uint64{1}, nil, 0},
		{"read-locked by two: reads anywhere", []lockStep{{r: []uint64{1}, worker: 1}, {r: []uint64{1}, worker: 3}}, nil, []uint64{1}, all},
		{"read and write by one worker", []lockStep{{w: []uint64{1}, r: []uint64{1}, worker: 0}}, nil, []uint64{1}, only(0)},
		{"intersection over keys: none", []lockStep{{w: []uint64{1}, worker: 0}, {w: []uint64{2}, worker: 1}}, []uint64{1}, []uint64{2}, 0},
		{"intersection over keys: one", []lockStep{{w: []uint64{1}, worker: 3}, {r: []uint64{2}, worker: 3}}, []uint64{1, 2}, nil, only(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLocks(n, 64)
			if err != nil {
				t.Fatal(err)
			}
			var ids [MaxTxLocks]int32
			for _, s := range tt.held {
				ks := keysW(s.w, s.r)
				if set := l.Schedulable(ks, ids[:]); !set.Has(s.worker) {
					t.Fatalf("setup lock on worker %d not schedulable (set %b)", s.worker, set)
				}
				if err := l.Lock(ks, ids[:ks.Len()], s.worker, 0); err != nil {
					t.Fatal(err)
				}
			}
			if got := l.Schedulable(keysW(tt.probeW, tt.probeR), ids[:]); got != tt.want {
				t.Errorf("Schedulable = %b, want %b", got, tt.want)
			}
		})
	}
}

func TestLocksErrors(t *testing.T) {
	if _, err := NewLocks(0, 10); err == nil {
		t.Error("NewLocks(0 workers) succeeded")
	}
	if _, err := NewLocks(65, 10); err == nil {
		t.Error("NewLocks(65 workers) succeeded")
	}
	l, err := NewLocks(2, 2)
	if err != nil {
		t.Fatal(err)
	}
	var ids [MaxTxLocks]int32
	ks := keysW([]uint64{1}, []uint64{2})
	l.Schedulable(ks, ids[:])
	if err := l.Lock(ks, ids[:2], 5, 0); !errors.Is(err, ErrBadWorker) {
		t.Errorf("Lock on worker 5: %v", err)
	}
	if err := l.Lock(ks, ids[:2], 0, 0); err != nil {
		t.Fatal(err)
	}
	// Conflict: worker 1 may not write key 1.
	ks2 := keysW([]uint64{1}, nil)
	var ids2 [MaxTxLocks]int32
	l.Schedulable(ks2, ids2[:])
	if err := l.Lock(ks2, ids2[:1], 1, 0); err == nil {
		t.Error("conflicting Lock succeeded")
	}
	// Full: two accounts held, a third does not fit.
	ks3 := keysW([]uint64{3}, nil)
	l.Schedulable(ks3, ids2[:])
	if err := l.Lock(ks3, ids2[:1], 1, 0); !errors.Is(err, ErrLocksFull) {
		t.Errorf("Lock into a full table: %v", err)
	}
	// Unlock with the wrong worker or twice is an error, never a panic.
	if err := l.Unlock(ids[:2], 1, 1); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock by the wrong worker: %v", err)
	}
	if err := l.Unlock(ids[:2], 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ids[:2], 1, 0); err == nil {
		t.Error("second Unlock succeeded")
	}
	if err := l.Unlock([]int32{99}, 0, 0); !errors.Is(err, ErrBadEntryID) {
		t.Errorf("Unlock of a bad id: %v", err)
	}
	if l.Len() != 0 {
		t.Errorf("%d entries left", l.Len())
	}
}

// refLocks is the reference model: per account, per worker, read and
// write counts, with no cleverness.
type refLocks struct {
	n     int
	read  map[Pubkey][]int
	write map[Pubkey][]int
}

func newRefLocks(n int) *refLocks {
	return &refLocks{n: n, read: map[Pubkey][]int{}, write: map[Pubkey][]int{}}
}

func (r *refLocks) counts(m map[Pubkey][]int, k Pubkey) []int {
	if m[k] == nil {
		m[k] = make([]int, r.n)
	}
	return m[k]
}

// set returns the workers w that may take the locks: no worker other
// than w holds a write lock on any of its keys, and none other than w
// holds a read lock on a key it writes.
func (r *refLocks) set(ks *Keys) WorkerSet {
	var out WorkerSet
	for w := 0; w < r.n; w++ {
		ok := true
		for i := 0; i < ks.Len() && ok; i++ {
			k := *ks.Key(i)
			wc, rc := r.counts(r.write, k), r.counts(r.read, k)
			for o := 0; o < r.n && ok; o++ {
				if o != w && (wc[o] > 0 || (ks.Writable(i) && rc[o] > 0)) {
					ok = false
				}
			}
		}
		if ok {
			out |= only(w)
		}
	}
	return out
}

func (r *refLocks) apply(ks *Keys, w, d int) {
	for i := range ks.Len() {
		if ks.Writable(i) {
			r.counts(r.write, *ks.Key(i))[w] += d
		} else {
			r.counts(r.read, *ks.Key(i))[w] += d
		}
	}
}

// TestLocksRandomAgainstReference drives random lock and unlock
// sequences over a small, hot key space (so the index sees long probe
// runs and backward-shift deletions) and compares every Schedulable
// answer with the reference model.
func TestLocksRandomAgainstReference(t *testing.T) {
	for _, workers := range []int{1, 3, 4, 64} {
		rng := rand.New(rand.NewPCG(uint64(workers), 7))
		l, err := NewLocks(workers, 48)
		if err != nil {
			t.Fatal(err)
		}
		ref := newRefLocks(workers)
		type held struct {
			ks  *Keys
			ids []int32
			w   int
		}
		var live []held
		var ids [MaxTxLocks]int32
		steps := 20000
		if workers > 8 {
			steps = 3000 // the reference is O(workers²) per step
		}
		for step := 0; step < steps; step++ {
			if len(live) > 0 && (rng.IntN(2) == 0 || len(live) > 12) {
				i := rng.IntN(len(live))
				h := live[i]
				if err := l.Unlock(h.ids, h.ks.NumWritable(), h.w); err != nil {
					t.Fatalf("step %d: unlock: %v", step, err)
				}
				ref.apply(h.ks, h.w, -1)
				live = append(live[:i], live[i+1:]...)
				continue
			}
			ks := new(Keys)
			for range 1 + rng.IntN(4) {
				k := key(uint64(rng.IntN(24)))
				if rng.IntN(3) == 0 {
					ks.AddWritable(&k)
				} else {
					ks.AddReadonly(&k)
				}
			}
			set := l.Schedulable(ks, ids[:])
			if want := ref.set(ks); set != want {
				t.Fatalf("step %d: schedulable %b, reference says %b", step, set, want)
			}
			if set == 0 {
				continue
			}
			w := trailing(set)
			if rng.IntN(2) == 0 {
				w = 63 - int(leadingZeros(set))
			}
			if err := l.Lock(ks, ids[:ks.Len()], w, 0); err != nil {
				if errors.Is(err, ErrLocksFull) {
					continue
				}
				t.Fatalf("step %d: lock: %v", step, err)
			}
			ref.apply(ks, w, +1)
			live = append(live, held{ks, append([]int32(nil), ids[:ks.Len()]...), w})
		}
		for _, h := range live {
			if err := l.Unlock(h.ids, h.ks.NumWritable(), h.w); err != nil {
				t.Fatal(err)
			}
		}
		if l.Len() != 0 {
			t.Errorf("workers %d: %d entries left after unlocking everything", workers, l.Len())
		}
		for i, c := range l.index {
			if c != 0 {
				t.Fatalf("index cell %d not empty after unlocking everything", i)
			}
		}
	}
}

func leadingZeros(s WorkerSet) int {
	n := 0
	for i := 63; i >= 0 && s&(1<<i) == 0; i-- {
		n++
	}
	return n
}
