package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
)

// The test binary re-executes itself as a validator process when
// QOS_SESSION_CHILD=validator: it serves one logon, feeds crossTxs
// transactions on tpu_to_pack, executes what the workers receive, and
// checks at the end that pack freed every payload and response array.
func TestMain(m *testing.M) {
	if os.Getenv("QOS_SESSION_CHILD") == "validator" {
		if err := runValidatorChild(); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const crossTxs = 1000

func txBytes(i int) []byte {
	b := make([]byte, 100+i%1100)
	for j := range b {
		b[j] = byte(i + j)
	}
	return b
}

func runValidatorChild() error {
	p, ok := bindings.ProfileByName(os.Getenv("QOS_SESSION_PROFILE"))
	if !ok {
		return errors.New("no profile")
	}
	srv, err := handshake.Listen(os.Getenv("QOS_SESSION_SOCK"), p)
	if err != nil {
		return err
	}
	defer srv.Close()
	v := &validator{p: p}
	defer v.close()
	fmt.Println("ready")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The first logon of an auto client may be refused (wrong version);
	// serve until one succeeds.
	for tries := 0; ; tries++ {
		_, err := srv.Accept(ctx, v.setup())
		if err == nil {
			break
		}
		var r *handshake.RefusalError
		if tries == 2 || !errors.As(err, &r) {
			return err
		}
	}
	mem := v.alloc.Bytes()

	// Workers execute in their own goroutines with their own slots.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		executed int
		batches  = make([]int, len(v.workers))
		werr     error
	)
	for wi := range v.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := v.workers[wi]
			for ctx.Err() == nil {
				if !w.in.Wait(50 * time.Millisecond) {
					mu.Lock()
					done := executed == crossTxs
					mu.Unlock()
					if done {
						return
					}
					continue
				}
				b, _ := w.in.TryRead()
				req, err := bindings.DecodePackToWorker(b)
				w.in.Finalize()
				if err == nil {
					err = req.Batch.Validate(mem)
				}
				var resp bindings.TransactionResponseRegion
				if err == nil {
					off, ok := w.alloc.Allocate(int(req.Batch.NumTransactions) * bindings.ExecutionResponseSize)
					if !ok {
						err = errors.New("worker allocation failed")
					}
					resp = bindings.TransactionResponseRegion{Tag: bindings.ExecutionResponseTag, NumTransactionResponses: req.Batch.NumTransactions, TransactionResponsesOffset: off}
				}
				for i := 0; err == nil && i < int(req.Batch.NumTransactions); i++ {
					var r bindings.SharableTransactionRegion
					var tx []byte
					if r, err = req.Batch.At(mem, i); err == nil {
						tx, err = r.Bytes(mem)
					}
					if err == nil && (len(tx) < 100 || tx[1] != tx[0]+1) {
						err = fmt.Errorf("worker %d: transaction %d arrived corrupt", wi, i)
					}
					if err == nil {
						err = resp.PutExecutionResponse(mem, i, bindings.ExecutionResponse{ExecutionSlot: 5, CostUnits: uint64(len(tx))})
					}
				}
				if err != nil {
					mu.Lock()
					werr = err
					mu.Unlock()
					cancel()
					return
				}
				slot, ok := w.out.Reserve()
				for !ok && ctx.Err() == nil {
					w.out.Sync()
					slot, ok = w.out.Reserve()
				}
				_ = (bindings.WorkerToPack{Batch: req.Batch, ProcessedCode: bindings.Processed, Responses: resp}).Encode(p.ABI, slot)
				w.out.Commit()
				mu.Lock()
				executed += int(req.Batch.NumTransactions)
				batches[wi]++
				mu.Unlock()
			}
		}()
	}

	// tpu_to_pack: copy each transaction into a slot-0 block, publish in
	// batches of 16 as Agave publishes per packet batch.
	for i := 0; i < crossTxs; i++ {
		tx := txBytes(i)
		off, ok := v.tpuAlloc.Allocate(len(tx))
		for !ok && ctx.Err() == nil {
			v.tpuAlloc.CleanRemoteFrees(nil)
			off, ok = v.tpuAlloc.Allocate(len(tx))
		}
		copy(mem[off:], tx)
		slot, ok := v.tpu.Reserve()
		for !ok && ctx.Err() == nil {
			v.tpu.Commit()
			v.tpu.Sync()
			slot, ok = v.tpu.Reserve()
		}
		if ctx.Err() != nil {
			break
		}
		_ = (bindings.TpuToPack{Transaction: bindings.SharableTransactionRegion{Offset: off, Length: uint32(len(tx))}, SrcAddr: [16]byte{10: 0xFF, 11: 0xFF, 15: byte(i)}}).Encode(slot)
		if i%16 == 15 {
			v.tpu.Commit()
		}
	}
	v.tpu.Commit()
	wg.Wait()
	if werr != nil {
		return werr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("executed %d of %d before the deadline", executed, crossTxs)
	}
	// Pack frees every payload (to slot 0) and every response array (to
	// the worker slots); wait for all of it.
	for ctx.Err() == nil {
		v.tpuAlloc.CleanRemoteFrees(nil)
		live := v.tpuAlloc.LiveBlocks()
		for _, w := range v.workers {
			w.alloc.CleanRemoteFrees(nil)
			live += w.alloc.LiveBlocks()
		}
		if live == 0 {
			fmt.Printf("ok executed=%d batches=%v\n", executed, batches)
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("pack did not free every block it owned")
}

func TestCrossProcessSession(t *testing.T) {
	for _, p := range bindings.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "QOS_SESSION_CHILD=validator", "QOS_SESSION_PROFILE="+p.Name, "QOS_SESSION_SOCK="+sock)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			})
			sc := bufio.NewScanner(out)
			if !sc.Scan() || sc.Text() != "ready" {
				t.Fatalf("child: %q", sc.Text())
			}
			l := testLogon()
			l.TpuToPackCapacity = 128 // small, so the feeder meets a full queue
			// Each slot holds a slab per size class it uses (the feeder 4, each
			// worker 1, pack 1): 64 MiB leaves room for all of them.
			l.AllocatorSize = 64 << 20
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := Connect(ctx, sock, bindings.Auto, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Profile.Name != p.Name {
				t.Fatalf("auto chose %s", s.Profile.Name)
			}
			runPack(ctx, t, s)
			line := ""
			if sc.Scan() {
				line = sc.Text()
			}
			if err := cmd.Wait(); err != nil || !strings.HasPrefix(line, fmt.Sprintf("ok executed=%d", crossTxs)) {
				t.Fatalf("validator: %q, %v", line, err)
			}
			t.Log("validator:", line)
		})
	}
}

// runPack is a minimal pack: drain tpu_to_pack, send the payloads in
// batches of up to 64 round robin to the workers, and free everything by the
// ownership rules when the answers come back.
func runPack(ctx context.Context, t *testing.T, s *Session) {
	t.Helper()
	mem := s.Memory()
	a := s.Allocators[0]
	abi := s.Profile.ABI
	flags, _ := bindings.ExecuteFlags(abi, false, false)
	var pending []bindings.SharableTransactionRegion
	received, answered, next, inflight := 0, 0, 0, 0
	send := func(batch []bindings.SharableTransactionRegion) {
		off, ok := a.Allocate(len(batch) * bindings.RegionSize)
		if !ok {
			t.Fatal("batch allocation failed")
		}
		br := bindings.SharableTransactionBatchRegion{NumTransactions: uint8(len(batch)), TransactionsOffset: off}
		for i, r := range batch {
			if err := br.Put(mem, i, r); err != nil {
				t.Fatal(err)
			}
		}
		w := s.Workers[next%len(s.Workers)]
		next++
		slot, ok := w.PackToWorker.Reserve()
		for !ok {
			w.PackToWorker.Sync()
			slot, ok = w.PackToWorker.Reserve()
		}
		_ = (bindings.PackToWorker{Flags: flags, MaxWorkingSlot: 10, Batch: br}).Encode(slot)
		w.PackToWorker.Commit()
		inflight++
	}
	for answered < crossTxs {
		if ctx.Err() != nil {
			t.Fatalf("received %d, answered %d: %v", received, answered, ctx.Err())
		}
		s.TpuToPack.Sync()
		for {
			b, ok := s.TpuToPack.TryRead()
			if !ok {
				break
			}
			m, err := bindings.DecodeTpuToPack(b)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := m.Transaction.Bytes(mem)
			if want := txBytes(received); err != nil || string(tx) != string(want) {
				t.Fatalf("transaction %d differs (%v)", received, err)
			}
			if m.SrcAddr[15] != byte(received) {
				t.Fatalf("transaction %d from %x", received, m.SrcAddr)
			}
			pending = append(pending, m.Transaction)
			received++
		}
		s.TpuToPack.Finalize()
		for len(pending) >= bindings.MaxTransactionsPerMessage || (len(pending) > 0 && received == crossTxs) {
			n := min(len(pending), bindings.MaxTransactionsPerMessage)
			send(pending[:n])
			pending = pending[n:]
		}
		for _, w := range s.Workers {
			w.WorkerToPack.Sync()
			for {
				b, ok := w.WorkerToPack.TryRead()
				if !ok {
					break
				}
				ans, err := bindings.DecodeWorkerToPack(abi, bindings.ExecutionResponseTag, b)
				if err != nil || ans.ProcessedCode != bindings.Processed {
					t.Fatalf("answer %+v, %v", ans, err)
				}
				for i := 0; i < int(ans.Batch.NumTransactions); i++ {
					r, err := ans.Batch.At(mem, i)
					if err != nil {
						t.Fatal(err)
					}
					er, err := ans.Responses.ExecutionResponse(mem, i)
					if err != nil || er.CostUnits != uint64(r.Length) || !er.NotIncludedReason.Included() {
						t.Fatalf("response %d: %+v, %v", i, er, err)
					}
					// The payload was Agave's (slot 0): pack frees it now.
					if err := a.Free(r.Offset); err != nil {
						t.Fatal(err)
					}
				}
				if err := a.Free(ans.Responses.TransactionResponsesOffset); err != nil {
					t.Fatal(err)
				}
				if err := a.Free(ans.Batch.TransactionsOffset); err != nil {
					t.Fatal(err)
				}
				answered += int(ans.Batch.NumTransactions)
				inflight--
			}
			w.WorkerToPack.Finalize()
		}
	}
	if inflight != 0 || a.LiveBlocks() != 0 {
		t.Fatalf("%d batches in flight, %d blocks live", inflight, a.LiveBlocks())
	}
}
