package session

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
)

// validator is the server side a test needs: the objects Agave's
// setup_session creates (sizes and slots as in the note §2), on standard
// pages. The full stand-in lives in agave/standin.
type validator struct {
	p        bindings.Profile
	regions  []*shm.Region
	alloc    *shm.Region
	tpuAlloc *rtsalloc.Allocator
	tpu      *shaq.Producer
	progress *shaq.Producer
	checkIn  *shaq.MPMCConsumer
	checkOut *shaq.MPMCProducer
	workers  []vworker
}

type vworker struct {
	alloc *rtsalloc.Allocator
	in    *shaq.Consumer
	out   *shaq.Producer
}

func (v *validator) close() {
	for _, r := range v.regions {
		_ = r.Close()
	}
}

func (v *validator) region(size int) (*shm.Region, error) {
	r, err := shm.Create("agave-scheduler-bindings", shm.RoundSize(size, false), false)
	if err != nil {
		return nil, err
	}
	v.regions = append(v.regions, r)
	return r, nil
}

func (v *validator) setup() func(handshake.Logon) (*handshake.Fds, error) {
	return func(l handshake.Logon) (*handshake.Fds, error) {
		p := v.p
		sf, _ := ShaqFormat(p.Shaq)
		af, _ := RtsAllocFormat(p.RtsAlloc)
		var err error
		if v.alloc, err = v.region(int(l.AllocatorSize)); err != nil {
			return nil, err
		}
		slots := 1 + int(l.WorkerCount) + int(l.CheckWorkerCount) + int(l.AllocatorHandles)
		if err := rtsalloc.Create(v.alloc, af, slots, 2<<20); err != nil {
			return nil, err
		}
		join := func(slot int) (*rtsalloc.Allocator, error) {
			if !p.ExplicitSlots {
				slot = -1
			}
			return rtsalloc.Join(v.alloc, af, slot)
		}
		if v.tpuAlloc, err = join(0); err != nil {
			return nil, err
		}
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
		if p.CheckQueues {
			reqSize := checkRequestSize(p.ABI)
			in, err := v.region(shaq.MinimumMPMCFileSizeFormat(sf, reqSize, int(l.PackToCheckCapacity)))
			if err != nil {
				return nil, err
			}
			out, err := v.region(shaq.MinimumMPMCFileSizeFormat(sf, bindings.WorkerToPackSize, int(l.CheckToPackCapacity)))
			if err != nil {
				return nil, err
			}
			if err := shaq.CreateMPMCFormat(in, sf, reqSize); err != nil {
				return nil, err
			}
			if err := shaq.CreateMPMCFormat(out, sf, bindings.WorkerToPackSize); err != nil {
				return nil, err
			}
			if v.checkIn, err = shaq.NewMPMCConsumerFormat(in, sf, reqSize); err != nil {
				return nil, err
			}
			if v.checkOut, err = shaq.NewMPMCProducerFormat(out, sf, bindings.WorkerToPackSize); err != nil {
				return nil, err
			}
			fds.PackToCheck, fds.CheckToPack = in.File(), out.File()
			for i := 0; i < int(l.CheckWorkerCount); i++ {
				if _, err := join(-1); err != nil {
					return nil, err
				}
			}
		}
		for i := 0; i < int(l.WorkerCount); i++ {
			var w vworker
			if w.alloc, err = join(1 + i); err != nil {
				return nil, err
			}
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
}

func testLogon() handshake.Logon {
	return handshake.Logon{
		WorkerCount: 2, CheckWorkerCount: 1, AllocatorSize: 16 << 20, AllocatorHandles: 2,
		TpuToPackCapacity: 256, ProgressCapacity: 16, PackToWorkerCapacity: 64, WorkerToPackCapacity: 64,
		PackToCheckCapacity: 64, CheckToPackCapacity: 64,
	}
}

// serve runs a validator of profile p on a fresh socket, accepting up to n
// logons; it returns the socket and the validator of the last success.
func serve(t *testing.T, p bindings.Profile, n int) (string, *validator, <-chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
	s, err := handshake.Listen(path, p)
	if err != nil {
		t.Fatal(err)
	}
	v := &validator{p: p}
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		for i := 0; i < n; i++ {
			if _, err = s.Accept(context.Background(), v.setup()); err == nil {
				break
			}
		}
		done <- err
	}()
	t.Cleanup(func() { _ = s.Close(); wg.Wait(); v.close() })
	return path, v, done
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestConnectAndExchange(t *testing.T) {
	for _, c := range []struct {
		server bindings.Profile
		client bindings.Profile
		tries  int
	}{
		{bindings.Profile40, bindings.Profile40, 1},
		{bindings.Profile41, bindings.Profile41, 1},
		{bindings.Profile43, bindings.Profile43, 1},
		{bindings.Profile44, bindings.Profile44, 1},
		{bindings.Profile40, bindings.Auto, 2},
		{bindings.Profile41, bindings.Auto, 2},
		{bindings.Profile43, bindings.Auto, 2},
		{bindings.Profile44, bindings.Auto, 1},
	} {
		t.Run(c.server.Name+"/"+c.client.Name, func(t *testing.T) {
			path, v, served := serve(t, c.server, c.tries)
			before := openFds(t)
			l := testLogon()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Connect(ctx, path, c.client, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := <-served; err != nil {
				t.Fatalf("validator: %v", err)
			}
			if s.Profile.Name != c.server.Name {
				t.Fatalf("session profile %s, validator %s", s.Profile.Name, c.server.Name)
			}
			// Only the validator's own descriptors stay open: the client
			// closed every fd it received after mapping it.
			if got, want := openFds(t)-before, c.server.FdCount(int(l.WorkerCount)); got != want {
				t.Errorf("%d more fds open after Connect, want %d (the validator's)", got, want)
			}
			if len(s.Allocators) != int(l.AllocatorHandles) || len(s.Workers) != int(l.WorkerCount) {
				t.Fatalf("%d handles, %d workers", len(s.Allocators), len(s.Workers))
			}
			if c.server.ExplicitSlots {
				for k, a := range s.Allocators {
					if a.Slot() != 1+int(l.WorkerCount)+k {
						t.Errorf("4.0 handle %d on slot %d", k, a.Slot())
					}
				}
			}
			if (s.PackToCheck != nil) != c.server.CheckQueues {
				t.Fatalf("check queues %v, profile says %v", s.PackToCheck != nil, c.server.CheckQueues)
			}
			exchange(t, s, v)
		})
	}
}

// exchange passes one message over every queue and frees memory by the
// ownership rules: pack frees the TPU payload and the response array.
func exchange(t *testing.T, s *Session, v *validator) {
	t.Helper()
	abi := s.Profile.ABI
	vmem := v.alloc.Bytes()
	mem := s.Memory()

	// tpu_to_pack: the validator copies a transaction into its slot-0 block.
	tx := bytes.Repeat([]byte{0x5A}, 300)
	off, ok := v.tpuAlloc.Allocate(len(tx))
	if !ok {
		t.Fatal("validator allocation failed")
	}
	copy(vmem[off:], tx)
	slot, ok := v.tpu.Reserve()
	if !ok {
		t.Fatal("tpu_to_pack full")
	}
	src := [16]byte{10: 0xFF, 11: 0xFF, 12: 192, 13: 0, 14: 2, 15: 7}
	if err := (bindings.TpuToPack{Transaction: bindings.SharableTransactionRegion{Offset: off, Length: uint32(len(tx))}, Flags: bindings.TpuFromStakedNode, SrcAddr: src}).Encode(slot); err != nil {
		t.Fatal(err)
	}
	v.tpu.Commit()

	s.TpuToPack.Sync()
	b, ok := s.TpuToPack.TryRead()
	if !ok {
		t.Fatal("nothing on tpu_to_pack")
	}
	m, err := bindings.DecodeTpuToPack(b)
	s.TpuToPack.Finalize()
	if err != nil || m.SrcAddr != src || m.Flags != bindings.TpuFromStakedNode {
		t.Fatalf("tpu message %+v, %v", m, err)
	}
	got, err := m.Transaction.Bytes(mem)
	if err != nil || !bytes.Equal(got, tx) {
		t.Fatalf("transaction bytes: %v", err)
	}
	if err := s.Allocators[0].Free(m.Transaction.Offset); err != nil {
		t.Fatalf("freeing the TPU payload: %v", err)
	}
	var freed []uint64
	v.tpuAlloc.CleanRemoteFrees(func(o uint64) { freed = append(freed, o) })
	if len(freed) != 1 || freed[0] != off {
		t.Fatalf("validator saw remote frees %v, want [%d]", freed, off)
	}

	// progress_tracker.
	want := bindings.Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 77, NextLeaderSlot: 77, LeaderRangeEnd: 80, RemainingCostUnits: 1 << 20, CurrentSlotProgress: 10}
	if abi != bindings.ABI40 {
		want.Epoch, want.LatestBlockhash = 3, [32]byte{1, 2, 3}
	}
	slot, _ = v.progress.Reserve()
	if err := want.Encode(abi, slot); err != nil {
		t.Fatal(err)
	}
	v.progress.Commit()
	s.Progress.Sync()
	b, ok = s.Progress.TryRead()
	if !ok {
		t.Fatal("no progress")
	}
	if p, err := bindings.DecodeProgress(abi, b); err != nil || p != want {
		t.Fatalf("progress %+v, %v", p, err)
	}
	s.Progress.Finalize()

	// pack_to_worker[1]: a batch of one transaction pack allocated itself.
	a := s.Allocators[1]
	txOff, ok1 := a.Allocate(len(tx))
	batchOff, ok2 := a.Allocate(bindings.RegionSize)
	if !ok1 || !ok2 {
		t.Fatal("client allocation failed")
	}
	copy(mem[txOff:], tx)
	batch := bindings.SharableTransactionBatchRegion{NumTransactions: 1, TransactionsOffset: batchOff}
	if err := batch.Put(mem, 0, bindings.SharableTransactionRegion{Offset: txOff, Length: uint32(len(tx))}); err != nil {
		t.Fatal(err)
	}
	flags, _ := bindings.ExecuteFlags(abi, true, false)
	w := s.Workers[1]
	slot, ok = w.PackToWorker.Reserve()
	if !ok {
		t.Fatal("pack_to_worker full")
	}
	if err := (bindings.PackToWorker{Flags: flags, MaxWorkingSlot: 78, Batch: batch}).Encode(slot); err != nil {
		t.Fatal(err)
	}
	w.PackToWorker.Commit()

	// The validator's worker 1 executes and answers from its own slot.
	vw := v.workers[1]
	vw.in.Sync()
	b, ok = vw.in.TryRead()
	if !ok {
		t.Fatal("worker got nothing")
	}
	req, err := bindings.DecodePackToWorker(b)
	vw.in.Finalize()
	if err != nil || req.Batch.Validate(vmem) != nil {
		t.Fatalf("worker request %+v, %v", req, err)
	}
	r0, _ := req.Batch.At(vmem, 0)
	if got, _ := r0.Bytes(vmem); !bytes.Equal(got, tx) {
		t.Fatal("worker sees other bytes")
	}
	respOff, ok := vw.alloc.Allocate(bindings.ExecutionResponseSize)
	if !ok {
		t.Fatal("worker allocation failed")
	}
	resps := bindings.TransactionResponseRegion{Tag: bindings.ExecutionResponseTag, NumTransactionResponses: 1, TransactionResponsesOffset: respOff}
	er := bindings.ExecutionResponse{ExecutionSlot: 77, NotIncludedReason: bindings.ReasonNone, CostUnits: 1500, FeePayerBalance: 9}
	if err := resps.PutExecutionResponse(vmem, 0, er); err != nil {
		t.Fatal(err)
	}
	slot, _ = vw.out.Reserve()
	if err := (bindings.WorkerToPack{Batch: req.Batch, ProcessedCode: bindings.Processed, Responses: resps}).Encode(abi, slot); err != nil {
		t.Fatal(err)
	}
	vw.out.Commit()

	w.WorkerToPack.Sync()
	b, ok = w.WorkerToPack.TryRead()
	if !ok {
		t.Fatal("no worker answer")
	}
	ans, err := bindings.DecodeWorkerToPack(abi, bindings.ExecutionResponseTag, b)
	w.WorkerToPack.Finalize()
	if err != nil || ans.ProcessedCode != bindings.Processed || ans.Batch != batch {
		t.Fatalf("answer %+v, %v", ans, err)
	}
	if got, err := ans.Responses.ExecutionResponse(mem, 0); err != nil || got != er {
		t.Fatalf("response %+v, %v", got, err)
	}
	// Pack frees the response array (remote) and, the batch answered, its own blocks (local).
	for _, o := range []uint64{ans.Responses.TransactionResponsesOffset, txOff, batchOff} {
		if err := a.Free(o); err != nil {
			t.Fatalf("free %d: %v", o, err)
		}
	}
	if n := vw.alloc.CleanRemoteFrees(nil); n != 1 {
		t.Fatalf("worker saw %d remote frees, want 1", n)
	}
	if a.LiveBlocks() != 0 {
		t.Fatalf("client slot still holds %d blocks", a.LiveBlocks())
	}

	if s.PackToCheck == nil {
		return
	}
	// 4.3/4.4: one check request over the shared MPMC pair (4.3 sends a
	// PackToWorker with check flags, 4.4 a PackToCheckWorker).
	cf, _ := bindings.CheckFlags(abi, bindings.Check{StatusChecks: true, LoadFeePayerBalance: true})
	slot, ok = s.PackToCheck.Reserve()
	if !ok {
		t.Fatal("pack_to_check_worker full")
	}
	if abi == bindings.ABI44 {
		err = bindings.PackToCheckWorker{Flags: cf, Batch: batch}.Encode(abi, slot)
	} else {
		err = bindings.PackToWorker{Flags: cf, Batch: batch}.Encode(slot)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.PackToCheck.Commit()
	v.checkIn.Sync()
	b, ok = v.checkIn.TryRead()
	if !ok {
		t.Fatal("check worker got nothing")
	}
	var creq bindings.PackToCheckWorker
	if abi == bindings.ABI44 {
		creq, err = bindings.DecodePackToCheckWorker(abi, b)
	} else {
		var m bindings.PackToWorker
		m, err = bindings.DecodePackToWorker(b)
		creq = bindings.PackToCheckWorker{Flags: m.Flags, Batch: m.Batch}
	}
	v.checkIn.Finalize()
	if err != nil || creq.Flags != cf || creq.Batch != batch {
		t.Fatalf("check request %+v, %v", creq, err)
	}
	slot, _ = v.checkOut.Reserve()
	if err := (bindings.WorkerToPack{Batch: creq.Batch, ProcessedCode: bindings.Invalid, Responses: bindings.TransactionResponseRegion{Tag: bindings.CheckResponseTag}}).Encode(abi, slot); err != nil {
		t.Fatal(err)
	}
	v.checkOut.Commit()
	s.CheckToPack.Sync()
	b, ok = s.CheckToPack.TryRead()
	if !ok {
		t.Fatal("no check answer")
	}
	cans, err := bindings.DecodeWorkerToPack(abi, bindings.CheckResponseTag, b)
	s.CheckToPack.Finalize()
	if err != nil || cans.ProcessedCode != bindings.Invalid || cans.Responses.Tag != bindings.CheckResponseTag {
		t.Fatalf("check answer %+v, %v", cans, err)
	}
}

func TestConnectUnsupportedProfileDoesNotLogOn(t *testing.T) {
	// A profile whose check queues would need MPMC on shaq 1.0.2: the check
	// comes before any logon, so not even the missing socket is noticed.
	p := bindings.Profile43
	p.Shaq = bindings.ShaqV1_0_2
	_, err := Connect(context.Background(), filepath.Join(t.TempDir(), "none.ipc"), p, testLogon(), nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("%v", err)
	}
	for _, p := range bindings.Profiles() {
		if err := Supported(p); err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
	}
	if err := Supported(bindings.Auto); err == nil {
		t.Error("auto is not a concrete profile")
	}
}

func TestConnectErrorsLeaveNothingOpen(t *testing.T) {
	// A validator whose allocator is not an allocator of the profile's
	// format: the join fails, and every received fd is closed again.
	path := filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
	srv, err := handshake.Listen(path, bindings.Profile41)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	v := &validator{p: bindings.Profile41}
	defer v.close()
	good := v.setup()
	done := make(chan error, 1)
	go func() {
		_, err := srv.Accept(context.Background(), func(l handshake.Logon) (*handshake.Fds, error) {
			fds, err := good(l)
			if err != nil {
				return nil, err
			}
			clear(v.alloc.Bytes()[:64]) // wipe the allocator header
			return fds, nil
		})
		done <- err
	}()
	before := openFds(t)
	_, err = Connect(context.Background(), path, bindings.Profile41, testLogon(), nil)
	if err == nil || !errors.Is(err, rtsalloc.ErrHeader) {
		t.Fatalf("%v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := openFds(t)-before, bindings.Profile41.FdCount(2); got != want {
		t.Errorf("%d more fds open, want %d (the validator's only)", got, want)
	}
	t.Log(err)
}
