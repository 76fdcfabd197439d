package packmode

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/session"
)

// FuzzHostileMessages plays a hostile validator: raw tpu_to_pack,
// worker_to_pack and progress_tracker elements from the fuzzer (offsets
// anywhere, lengths, tags and codes of any value) between real traffic,
// then one loop pass each. The loop must not panic, must account for
// every payload it took (held = queued + vote lane + in flight), and may
// only count and drop what it cannot use.
func FuzzHostileMessages(f *testing.F) {
	// Each op: 1 byte kind (0 tpu, 1 worker 0 answer, 2 progress, 3 real
	// traffic), then 40 raw bytes for kinds 0–2.
	tpu := make([]byte, 41)
	binary.LittleEndian.PutUint64(tpu[1:], 1<<40) // offset far outside the mapping
	binary.LittleEndian.PutUint32(tpu[9:], 200)
	f.Add(append([]byte{3}, tpu...))
	ans := make([]byte, 41)
	ans[0] = 1
	binary.LittleEndian.PutUint64(ans[9:], 4096) // batch offset no batch has
	ans[17] = 0                                  // PROCESSED
	ans[25] = 0                                  // execution tag
	ans[26] = 64                                 // 64 responses
	binary.LittleEndian.PutUint64(ans[33:], 123) // response array at a bad offset
	f.Add(append([]byte{3, 3}, ans...))
	prog := make([]byte, 41)
	prog[0], prog[1] = 2, 2
	binary.LittleEndian.PutUint64(prog[17:], ^uint64(0)) // slot
	binary.LittleEndian.PutUint64(prog[41-8:], ^uint64(0))
	f.Add(append(prog, 3))
	f.Fuzz(hostileRunner(f))
}

// hostileRunner sets up the loop and the validator once and returns the
// per-input body of FuzzHostileMessages.
func hostileRunner(f testing.TB) func(t *testing.T, ops []byte) {
	txs := story(512, 9)
	socket, v, ready := serveValidator(f, txs)
	v.checkLocks, v.cycle = false, true
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := session.Connect(context.Background(), socket, bindings.Profile41, testLogon(), quiet)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	if err := <-ready; err != nil {
		f.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Policy = PolicyFeeOnly
	cfg.Check = true
	cfg.Logger = quiet
	cfg.QueueCapacity = 256
	if cfg, err = cfg.withDefaults(); err != nil {
		f.Fatal(err)
	}
	st := &Stats{}
	l, err := newLoop(cfg, s, st)
	if err != nil {
		f.Fatal(err)
	}
	v.newSlot(true)
	var clock int64
	return func(t *testing.T, ops []byte) {
		for len(ops) > 0 {
			kind := ops[0] % 4
			ops = ops[1:]
			var raw [40]byte
			if kind != 3 {
				ops = ops[copy(raw[:], ops):]
			}
			switch kind {
			case 0:
				v.tpu.Sync()
				if b, ok := v.tpu.Reserve(); ok {
					copy(b, raw[:])
					v.tpu.Commit()
				}
			case 1:
				w := &v.workers[0]
				w.out.Sync()
				if b, ok := w.out.Reserve(); ok {
					copy(b, raw[:])
					w.out.Commit()
				}
			case 2:
				v.progress.Sync()
				if b, ok := v.progress.Reserve(); ok {
					copy(b, raw[:])
					v.progress.Commit()
				}
			case 3:
				v.publishProgress()
				v.feed(8)
				v.work()
			}
			clock += 1000
			l.now = clock
			l.drainProgress()
			l.drainWorkers()
			l.drainTPU()
			l.expire(64)
			l.schedule()
			v.audit()
			var inflight int64
			for i := range l.rings {
				r := &l.rings[i]
				for k := 0; k < r.size; k++ {
					inflight += int64(r.f[(r.head+k)%len(r.f)].n)
				}
			}
			for i := range l.checks {
				if l.checks[i].inUse && l.checks[i].worker < 0 {
					inflight += int64(l.checks[i].n)
				}
			}
			if held := int64(l.q.Len()+l.vLen+l.checkQ.Len()) + inflight; st.Held != held {
				t.Fatalf("held %d, but %d queued, %d votes, %d in flight", st.Held, l.q.Len(), l.vLen, inflight)
			}
			if int64(len(l.free))+st.Held != int64(len(l.txs)) {
				t.Fatalf("%d free slots + %d held != %d", len(l.free), st.Held, len(l.txs))
			}
		}
	}
}
