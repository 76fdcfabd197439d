package packmode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
	"github.com/solqos/qos/score"
)

// testValidator is the server side of a session for these tests: the
// objects Agave's setup_session creates (as agave/session's tests build
// them, profile 4.1), a feeder on allocator slot 0, a progress publisher
// and workers that execute against a tiny bank (a payer is funded or
// not), all driven by step from one goroutine. It audits the client: every
// payload and response array it hands over must come back through the
// allocator's remote frees exactly once, and no two workers may hold
// batches with conflicting locks at once.
type testValidator struct {
	p        bindings.Profile
	regions  []*shm.Region
	alloc    *shm.Region
	mem      []byte
	tpuAlloc *rtsalloc.Allocator
	tpu      *shaq.Producer
	progress *shaq.Producer
	workers  []vworker

	txs      []testTx
	next     int // next tx to feed
	handed   map[uint64]int
	resp     map[uint64]bool
	bad      []error
	slot     uint64
	used     uint64 // block cost used in this slot
	leader   bool
	executed []int // per tx: times included
	results  []uint8
	reasons  map[uint8]int

	conflicts int
	checks    int // CHECK batches answered
	// checkLocks enables the conflict check (it allocates; benchmarks
	// and the allocation test turn it off); cycle feeds the story again
	// and again.
	checkLocks bool
	cycle      bool
	visitTPU   func(off uint64)
	visitResp  func(off uint64)
}

type vworker struct {
	alloc   *rtsalloc.Allocator
	in      *shaq.Consumer
	out     *shaq.Producer
	pending []bindings.PackToWorker // read, not answered yet
}

// testTx is one transaction of the story.
type testTx struct {
	data   []byte
	ip     [16]byte
	flags  bindings.TpuFlags
	funded bool
	fee    uint64
	vote   bool
}

func (v *testValidator) region(size int) (*shm.Region, error) {
	r, err := shm.Create("agave-scheduler-bindings", shm.RoundSize(size, false), false)
	if err != nil {
		return nil, err
	}
	v.regions = append(v.regions, r)
	return r, nil
}

func (v *testValidator) close() {
	for _, r := range v.regions {
		_ = r.Close()
	}
}

func (v *testValidator) setup(l handshake.Logon) (*handshake.Fds, error) {
	p := v.p
	sf, _ := session.ShaqFormat(p.Shaq)
	af, _ := session.RtsAllocFormat(p.RtsAlloc)
	var err error
	if v.alloc, err = v.region(int(l.AllocatorSize)); err != nil {
		return nil, err
	}
	v.mem = v.alloc.Bytes()
	if err := rtsalloc.Create(v.alloc, af, 1+int(l.WorkerCount)+int(l.AllocatorHandles), 2<<20); err != nil {
		return nil, err
	}
	if v.tpuAlloc, err = rtsalloc.Join(v.alloc, af, -1); err != nil {
		return nil, err
	}
	v.tpuAlloc.SetRejectHook(func(off uint64, err error) { v.bad = append(v.bad, fmt.Errorf("payload %d: %w", off, err)) })
	queue := func(elem int, capacity uint64) (*shm.Region, error) {
		r, err := v.region(shaq.MinimumFileSize(sf, elem, int(capacity)))
		if err != nil {
			return nil, err
		}
		return r, shaq.Create(r, sf, elem)
	}
	fds := &handshake.Fds{Allocator: v.alloc.File()}
	r, err := queue(bindings.TpuToPackSize, l.TpuToPackCapacity)
	if err != nil {
		return nil, err
	}
	fds.TpuToPack = r.File()
	if v.tpu, err = shaq.NewProducer(r, sf, bindings.TpuToPackSize); err != nil {
		return nil, err
	}
	if r, err = queue(bindings.ProgressSize(p.ABI), l.ProgressCapacity); err != nil {
		return nil, err
	}
	fds.Progress = r.File()
	if v.progress, err = shaq.NewProducer(r, sf, bindings.ProgressSize(p.ABI)); err != nil {
		return nil, err
	}
	for i := 0; i < int(l.WorkerCount); i++ {
		var w vworker
		if w.alloc, err = rtsalloc.Join(v.alloc, af, -1); err != nil {
			return nil, err
		}
		w.alloc.SetRejectHook(func(off uint64, err error) { v.bad = append(v.bad, fmt.Errorf("response %d: %w", off, err)) })
		in, err := queue(bindings.PackToWorkerSize, l.PackToWorkerCapacity)
		if err != nil {
			return nil, err
		}
		out, err := queue(bindings.WorkerToPackSize, l.WorkerToPackCapacity)
		if err != nil {
			return nil, err
		}
		if w.in, err = shaq.NewConsumer(in, sf, bindings.PackToWorkerSize); err != nil {
			return nil, err
		}
		if w.out, err = shaq.NewProducer(out, sf, bindings.WorkerToPackSize); err != nil {
			return nil, err
		}
		v.workers = append(v.workers, w)
		fds.Workers = append(fds.Workers, handshake.WorkerFds{PackToWorker: in.File(), WorkerToPack: out.File()})
	}
	return fds, nil
}

// serveValidator listens on a fresh socket and accepts one logon in the
// background; ready is closed when the session is set up.
func serveValidator(t testing.TB, txs []testTx) (socket string, v *testValidator, ready <-chan error) {
	t.Helper()
	return serveValidatorAt(t, filepath.Join(t.TempDir(), "scheduler_bindings.ipc"), txs)
}

// serveValidatorAt is serveValidator on a given socket path.
func serveValidatorAt(t testing.TB, socket string, txs []testTx) (string, *testValidator, <-chan error) {
	t.Helper()
	srv, err := handshake.Listen(socket, bindings.Profile41)
	if err != nil {
		t.Fatal(err)
	}
	v := &testValidator{p: bindings.Profile41, txs: txs, handed: map[uint64]int{}, resp: map[uint64]bool{},
		executed: make([]int, len(txs)), results: make([]uint8, len(txs)), reasons: map[uint8]int{}}
	for i := range v.results {
		v.results[i] = 255
	}
	v.checkLocks = true
	v.visitTPU = func(off uint64) {
		if _, ok := v.handed[off]; !ok {
			v.bad = append(v.bad, fmt.Errorf("payload %d freed but not live", off))
		}
		delete(v.handed, off)
	}
	v.visitResp = func(off uint64) {
		if !v.resp[off] {
			v.bad = append(v.bad, fmt.Errorf("response array %d freed but not live", off))
		}
		delete(v.resp, off)
	}
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := srv.Accept(context.Background(), v.setup)
		done <- err
	}()
	t.Cleanup(func() { _ = srv.Close(); wg.Wait(); v.close() })
	return socket, v, done
}

const testBlockLimit = 48_000_000

// publishProgress sends one progress message.
func (v *testValidator) publishProgress() bool {
	b, ok := v.progress.Reserve()
	if !ok {
		v.progress.Sync()
		if b, ok = v.progress.Reserve(); !ok {
			return false
		}
	}
	m := bindings.Progress{CurrentSlot: v.slot, NextLeaderSlot: v.slot, LeaderRangeEnd: v.slot + 3}
	if v.leader {
		m.LeaderState = bindings.LeaderState(2) // LEADER_READY
		m.RemainingCostUnits = testBlockLimit - min(v.used, testBlockLimit)
	}
	_ = m.Encode(v.p.ABI, b)
	v.progress.Commit()
	return true
}

// newSlot moves to the next slot.
func (v *testValidator) newSlot(leader bool) {
	v.slot++
	v.used = 0
	v.leader = leader
}

// feed publishes up to n more transactions of the story; it returns how
// many it did.
func (v *testValidator) feed(n int) int {
	v.tpu.Sync()
	k := 0
	for ; k < n && (v.cycle || v.next < len(v.txs)); k++ {
		idx := v.next % len(v.txs)
		tx := &v.txs[idx]
		b, ok := v.tpu.Reserve()
		if !ok {
			break
		}
		off, ok := v.tpuAlloc.Allocate(len(tx.data))
		if !ok {
			v.bad = append(v.bad, errors.New("tpu allocator exhausted"))
			break
		}
		copy(v.mem[off:], tx.data)
		_ = bindings.TpuToPack{Transaction: bindings.SharableTransactionRegion{Offset: off, Length: uint32(len(tx.data))},
			Flags: tx.flags, SrcAddr: tx.ip}.Encode(b)
		v.handed[off] = idx
		v.next++
	}
	if k > 0 {
		v.tpu.Commit()
	}
	return k
}

// work answers every batch read in the previous call and reads the new
// ones, checking that no two workers hold conflicting batches.
func (v *testValidator) work() {
	for i := range v.workers {
		w := &v.workers[i]
		for _, m := range w.pending {
			v.answer(w, m)
		}
		w.pending = w.pending[:0]
		w.in.Sync()
		n := 0
		for {
			b, ok := w.in.TryRead()
			if !ok {
				break
			}
			n++
			m, err := bindings.DecodePackToWorker(b)
			if err != nil || m.Batch.Validate(v.mem) != nil || m.Batch.NumTransactions == 0 || m.Batch.NumTransactions > 64 {
				v.bad = append(v.bad, fmt.Errorf("worker %d: bad batch %+v", i, m))
				continue
			}
			w.pending = append(w.pending, m)
		}
		if n > 0 {
			w.in.Finalize()
		}
	}
	if !v.checkLocks {
		return
	}
	// Locks held by the batches pending now, per worker.
	writers := map[[32]byte]int{}
	readers := map[[32]byte]map[int]bool{}
	var view score.View
	for i := range v.workers {
		for _, m := range v.workers[i].pending {
			if m.Flags&bindings.PackExecute == 0 {
				continue // CHECK takes no locks
			}
			for j := range int(m.Batch.NumTransactions) {
				r, _ := m.Batch.At(v.mem, j)
				data, err := r.Bytes(v.mem)
				if err != nil || view.Parse(data) != score.OK {
					continue
				}
				nreq, nrou := view.NumRequiredSignatures(), view.NumReadonlyUnsigned()
				for k := range view.NumStaticKeys() {
					key := [32]byte(view.StaticKey(data, k))
					write := k < nreq-view.NumReadonlySigned() || (k >= nreq && k < view.NumStaticKeys()-nrou)
					if write {
						if o, ok := writers[key]; ok && o != i {
							v.conflicts++
						}
						for o := range readers[key] {
							if o != i {
								v.conflicts++
							}
						}
						writers[key] = i
					} else {
						if o, ok := writers[key]; ok && o != i {
							v.conflicts++
						}
						if readers[key] == nil {
							readers[key] = map[int]bool{}
						}
						readers[key][i] = true
					}
				}
			}
		}
	}
}

// answer executes one batch and writes its response.
func (v *testValidator) answer(w *vworker, m bindings.PackToWorker) {
	n := int(m.Batch.NumTransactions)
	w.out.Sync()
	b, ok := w.out.Reserve()
	if !ok {
		v.bad = append(v.bad, errors.New("worker_to_pack full"))
		return
	}
	msg := bindings.WorkerToPack{Batch: m.Batch}
	if m.Flags&bindings.PackExecute == 0 { // CHECK (4.0–4.2 layout)
		size := bindings.CheckResponseSize(v.p.ABI)
		off, ok := w.alloc.Allocate(n * size)
		if !ok {
			v.bad = append(v.bad, errors.New("worker allocator exhausted"))
			return
		}
		v.resp[off] = true
		v.checks++
		msg.Responses = bindings.TransactionResponseRegion{Tag: bindings.CheckResponseTag, NumTransactionResponses: uint8(n), TransactionResponsesOffset: off}
		for j := range n {
			r, _ := m.Batch.At(v.mem, j)
			cr := bindings.CheckResponse{StatusCheckFlags: bindings.StatusRequested | bindings.StatusPerformed,
				FeePayerBalanceFlags: bindings.FeePayerBalanceRequested | bindings.FeePayerBalancePerformed,
				ResolveFlags:         bindings.ResolveRequested | bindings.ResolvePerformed, BalanceSlot: v.slot}
			if idx, ok := v.handed[r.Offset]; !ok {
				v.bad = append(v.bad, fmt.Errorf("check batch names payload %d not live", r.Offset))
			} else if v.txs[idx].funded {
				cr.FeePayerBalance = 1_000_000_000_000
			}
			_ = msg.Responses.PutCheckResponse(v.p.ABI, v.mem, j, cr)
		}
		_ = msg.Encode(v.p.ABI, b)
		w.out.Commit()
		return
	}
	if !v.leader || m.MaxWorkingSlot < v.slot {
		msg.ProcessedCode = bindings.MaxWorkingSlotExceeded
	} else {
		off, ok := w.alloc.Allocate(n * bindings.ExecutionResponseSize)
		if !ok {
			v.bad = append(v.bad, errors.New("worker allocator exhausted"))
			return
		}
		v.resp[off] = true
		msg.Responses = bindings.TransactionResponseRegion{Tag: bindings.ExecutionResponseTag, NumTransactionResponses: uint8(n), TransactionResponsesOffset: off}
		for j := range n {
			r, _ := m.Batch.At(v.mem, j)
			idx, ok := v.handed[r.Offset]
			er := bindings.ExecutionResponse{ExecutionSlot: v.slot}
			switch {
			case !ok:
				v.bad = append(v.bad, fmt.Errorf("batch names payload %d not live", r.Offset))
				er.NotIncludedReason = bindings.NotIncludedReason(78)
			case !v.txs[idx].funded:
				er.NotIncludedReason = bindings.NotIncludedReason(68) // INSUFFICIENT_FUNDS_FOR_FEE
				v.results[idx] = 68
			case v.used+2_000 > testBlockLimit:
				er.NotIncludedReason = bindings.NotIncludedReason(81)
				v.results[idx] = 81
			default:
				er.CostUnits = 2_000
				v.used += er.CostUnits
				v.executed[idx]++
				v.results[idx] = 0
			}
			v.reasons[uint8(er.NotIncludedReason)]++
			_ = msg.Responses.PutExecutionResponse(v.mem, j, er)
		}
	}
	_ = msg.Encode(v.p.ABI, b)
	w.out.Commit()
}

// audit collects the client's frees.
func (v *testValidator) audit() {
	v.tpuAlloc.CleanRemoteFrees(v.visitTPU)
	for i := range v.workers {
		v.workers[i].alloc.CleanRemoteFrees(v.visitResp)
	}
}

// buildTx encodes a legacy transaction: payer (signer, writable), acct
// (writable), the compute-budget program and prog; instructions set the
// CU limit and price, then call prog on payer and acct. id goes into the
// first signature so every transaction is distinct.
func buildTx(id uint64, payer, acct, prog [32]byte, cus uint32, price uint64) []byte {
	b := []byte{1}
	var sig [64]byte
	binary.LittleEndian.PutUint64(sig[:], id)
	b = append(b, sig[:]...)
	b = append(b, 1, 0, 2, 4)
	b = append(b, payer[:]...)
	b = append(b, acct[:]...)
	b = append(b, score.ComputeBudgetProgram[:]...)
	b = append(b, prog[:]...)
	var hash [32]byte
	hash[0] = 7
	b = append(b, hash[:]...)
	b = append(b, 3)
	b = append(b, 2, 0, 5, 2)
	b = binary.LittleEndian.AppendUint32(b, cus)
	b = append(b, 2, 0, 9, 3)
	b = binary.LittleEndian.AppendUint64(b, price)
	b = append(b, 3, 2, 0, 1, 1, 1)
	return b
}
