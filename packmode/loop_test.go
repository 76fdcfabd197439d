package packmode

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

// story builds n transactions: honest funded payers with a spread of
// fees, a tenth writing one hot account, spammers whose unfunded payers
// bid high fees from a few IPs, and simple votes.
func story(n int, seed uint64) []testTx {
	r := rand.New(rand.NewPCG(seed, 7))
	var prog, hot [32]byte
	prog[0], prog[1] = 0xAA, 1
	hot[0], hot[1] = 0xBB, 2
	var voteProg [32]byte
	voteProg[0], voteProg[1] = 0xCC, 3
	txs := make([]testTx, n)
	var view score.View
	for i := range txs {
		var payer, acct [32]byte
		t := &txs[i]
		t.ip = [16]byte{10: 0xff, 11: 0xff, 12: 10}
		switch k := r.IntN(100); {
		case k < 5: // vote
			payer[0], payer[1], payer[2] = 0x01, byte(r.IntN(256)), byte(r.IntN(2))
			acct = payer
			acct[3] = 9
			t.data = buildTx(uint64(i), payer, acct, voteProg, 3000, 0)
			t.flags = bindings.TpuIsSimpleVote | bindings.TpuFromStakedNode
			t.funded, t.vote = true, true
			t.ip[13], t.ip[15] = 1, payer[1]
		case k < 30: // spam: unfunded payer, high fee, few IPs
			payer[0], payer[1], payer[2] = 0x02, byte(r.IntN(256)), byte(i)
			acct[0], acct[1], acct[2] = 0x03, byte(i), byte(i>>8)
			t.data = buildTx(uint64(i), payer, acct, prog, 1_000, 100_000_000)
			t.ip[13], t.ip[15] = 2, byte(r.IntN(3))
		default: // honest
			pi := r.IntN(4000)
			payer[0], payer[1], payer[2] = 0x04, byte(pi), byte(pi>>8)
			if r.IntN(100) < 10 {
				acct = hot
			} else {
				acct[0], acct[1], acct[2] = 0x05, byte(i), byte(i>>8)
			}
			t.data = buildTx(uint64(i), payer, acct, prog, 1_000, uint64(1000+r.IntN(20_000_000)))
			t.funded = true
			t.ip[13], t.ip[14], t.ip[15] = 3, payer[2], payer[1]
		}
		if view.Parse(t.data) != score.OK {
			panic("story: unparsable transaction")
		}
		b, _ := view.Budget(t.data, score.DefaultFeeParams())
		t.fee = b.Fee
	}
	return txs
}

func testLogon() handshake.Logon {
	return handshake.Logon{WorkerCount: 2, AllocatorSize: 64 << 20, AllocatorHandles: 1,
		TpuToPackCapacity: 4096, ProgressCapacity: 4096, PackToWorkerCapacity: 64, WorkerToPackCapacity: 64}
}

// TestLoopAgainstValidator runs the loop against the test validator in
// this process (the two-process run is TestPackProcess) for every
// policy and checks the accounting: every payload freed once, every
// transaction ended somewhere, no conflicting batches, no own block left.
func TestLoopAgainstValidator(t *testing.T) {
	for _, tc := range []struct {
		pol   Policy
		check bool
	}{{PolicyModel, false}, {PolicyFeeOnly, false}, {PolicyFIFO, false}, {PolicyModel, true}, {PolicyFeeOnly, true}} {
		pol := tc.pol
		name := pol.String()
		if tc.check {
			name += "+check"
		}
		t.Run(name, func(t *testing.T) {
			txs := story(3000, 1)
			socket, v, ready := serveValidator(t, txs)
			cfg := DefaultConfig()
			cfg.Policy = pol
			cfg.Check = tc.check
			cfg.QueueCapacity = 1024
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			if pol == PolicyModel {
				mp := model.DefaultParams()
				mp.MinObservations = 1
				cfg.Model = model.New(mp)
			}
			r, err := NewRunner(RunConfig{Socket: socket, Profile: bindings.Profile41, Logon: testLogon(), Loop: cfg, Once: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			runErr := make(chan error, 1)
			go func() { runErr <- r.Run(ctx) }()
			if err := <-ready; err != nil {
				t.Fatal(err)
			}
			st := driveValidator(t, v, r, cancel, runErr)
			checkAccounting(t, v, st)
			if tc.check {
				if v.checks == 0 || st.CheckFailed == 0 {
					t.Errorf("check stage unused: %d check batches, %d failed", v.checks, st.CheckFailed)
				}
				if v.reasons[68] != 0 {
					t.Errorf("%d unfunded transactions reached execution past the check", v.reasons[68])
				}
			}
			t.Logf("%s (check %v): check failed %d, included %d (value %d), not included %v, ends %v, outcomes %v",
				pol, tc.check, st.CheckFailed, st.Ends[EndIncluded], capturedValue(v), v.reasons, st.Ends, st.Outcomes)
		})
	}
}

// driveValidator runs the validator's side until the story is fed and
// settled, then stops the client and keeps serving until it returns.
func driveValidator(t *testing.T, v *testValidator, r *Runner, cancel func(), runErr <-chan error) Stats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	step := 0
	settled := 0
	for time.Now().Before(deadline) {
		step++
		if step%20 == 0 {
			v.newSlot(step%100 != 0) // leader 4 slots of 5
		}
		v.publishProgress()
		v.feed(40)
		v.work()
		v.audit()
		time.Sleep(200 * time.Microsecond)
		st, _ := r.Stats()
		if v.next == len(v.txs) && st.Received == uint64(len(v.txs)) && st.QueueLen == 0 && st.VoteLen == 0 && st.InFlight == 0 {
			settled++
			if settled > 50 {
				break
			}
		}
	}
	cancel()
	for {
		select {
		case err := <-runErr:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			v.work()
			v.audit()
			st, _ := r.Stats()
			return st
		default:
		}
		v.publishProgress()
		v.work()
		v.audit()
		time.Sleep(200 * time.Microsecond)
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("the loop did not stop")
		}
	}
}

func checkAccounting(t *testing.T, v *testValidator, st Stats) {
	t.Helper()
	for _, err := range v.bad {
		t.Error(err)
	}
	if v.conflicts != 0 {
		t.Errorf("%d lock conflicts between workers' batches", v.conflicts)
	}
	if len(v.handed) != 0 {
		t.Errorf("%d payloads never freed", len(v.handed))
	}
	if len(v.resp) != 0 {
		t.Errorf("%d response arrays never freed", len(v.resp))
	}
	for i, n := range v.executed {
		if n > 1 {
			t.Errorf("tx %d included %d times", i, n)
		}
	}
	if st.Received != uint64(v.next) || st.Finished() != st.Received || st.Held != 0 {
		t.Errorf("received %d of %d fed, %d ended, %d held: %v", st.Received, v.next, st.Finished(), st.Held, st.Ends)
	}
	if st.FreeErrors != 0 || st.BadResponse != 0 || st.UnknownBatch != 0 || st.LiveOwnBlocks != 0 {
		t.Errorf("free errors %d, bad responses %d, unknown batches %d, own blocks left %d",
			st.FreeErrors, st.BadResponse, st.UnknownBatch, st.LiveOwnBlocks)
	}
	var included uint64
	for i := range v.executed {
		included += uint64(v.executed[i])
	}
	if included != st.Ends[EndIncluded] {
		t.Errorf("validator included %d, loop counted %d", included, st.Ends[EndIncluded])
	}
}

// capturedValue is the fees of included transactions (the test bank
// charges the declared fee of funded payers).
func capturedValue(v *testValidator) uint64 {
	var sum uint64
	for i, n := range v.executed {
		if n > 0 {
			sum += v.txs[i].fee
		}
	}
	return sum
}

// TestLoopAppliesAdmissionLimits: pack mode refuses what the sidecar
// refuses, through the same inspection (score.Evaluator.InspectTx): with
// an account-lock limit of 2, every story transaction (payer, account,
// program: 3 keys) is refused as lock_too_many_accounts before it can be
// queued, without a penalty, and each payload is still freed once.
func TestLoopAppliesAdmissionLimits(t *testing.T) {
	txs := story(400, 3)
	socket, v, ready := serveValidator(t, txs)
	cfg := DefaultConfig()
	cfg.Policy = PolicyModel
	cfg.Model = model.New(model.DefaultParams())
	cfg.Limits = score.Limits{AccountLockLimit: 2}
	cfg.QueueCapacity = 1024
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := NewRunner(RunConfig{Socket: socket, Profile: bindings.Profile41, Logon: testLogon(), Loop: cfg, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	st := driveValidator(t, v, r, cancel, runErr)
	checkAccounting(t, v, st)
	if got := st.Rejects[score.RejectTooManyAccountLocks]; got != st.Received || got == 0 {
		t.Errorf("lock_too_many_accounts %d of %d received", got, st.Received)
	}
	if st.Ends[EndIncluded] != 0 || st.Penalized != 0 {
		t.Errorf("included %d, penalized %d; want 0, 0", st.Ends[EndIncluded], st.Penalized)
	}
}
