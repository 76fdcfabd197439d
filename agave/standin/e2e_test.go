package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	agsession "github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/sim"
)

// The end-to-end test runs the stand-in validator in the test process and
// a minimal scheduler client in a second process: this test binary run
// again with these variables set.
const (
	envClient  = "QOS_STANDIN_TEST_CLIENT" // socket path
	envProfile = "QOS_STANDIN_TEST_PROFILE"
	envPlant   = "QOS_STANDIN_TEST_PLANT" // "", "leak" or "double-free"
)

func TestMain(m *testing.M) {
	if sock := os.Getenv(envClient); sock != "" {
		res, err := runClient(sock, os.Getenv(envProfile), os.Getenv(envPlant))
		if err != nil {
			fmt.Fprintf(os.Stderr, "client: %v\n", err)
			os.Exit(2)
		}
		_ = json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// clientResult is what the minimal client reports.
type clientResult struct {
	TpuRead     int    `json:"tpu_read"`
	Progress    int    `json:"progress"`
	Included    int    `json:"included"`
	Reasons     []int  `json:"reasons"`
	Checked     int    `json:"checked"`
	Pubkeys     int    `json:"pubkeys"`
	PlantedAt   uint64 `json:"planted_at"`
	LastSlot    uint64 `json:"last_slot"`
	LeaderReady bool   `json:"leader_ready"`
}

// runClient is the minimal scheduler, on agave/session: log on, drain and free TPU
// messages, send one EXECUTE batch of them to worker 0 and one CHECK
// (worker 0, or the check queue where the profile has one), read and free
// the responses, then free the payloads.
func runClient(sock, profileName, plant string) (clientResult, error) {
	var res clientResult
	p, ok := bindings.ProfileByName(profileName)
	if !ok {
		return res, fmt.Errorf("profile %q", profileName)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := handshake.Logon{WorkerCount: 2, CheckWorkerCount: 1, AllocatorSize: 64 << 20, AllocatorHandles: 1,
		TpuToPackCapacity: 4096, ProgressCapacity: 1024, PackToWorkerCapacity: 64, WorkerToPackCapacity: 64,
		PackToCheckCapacity: 64, CheckToPackCapacity: 64}
	var sess *agsession.Session
	var err error
	for {
		sess, err = agsession.Connect(ctx, sock, p, l, nil)
		if !errors.Is(err, handshake.ErrSocketMissing) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return res, err
	}
	defer sess.Close()
	alloc, mem := sess.Allocators[0], sess.Memory()
	tpu, prog := sess.TpuToPack, sess.Progress
	toW, fromW := sess.Workers[0].PackToWorker, sess.Workers[0].WorkerToPack

	// Drain TPU messages for a while; keep up to 8 payloads for a batch,
	// free the rest at once.
	var keep []bindings.SharableTransactionRegion
	drainProgress := func() {
		prog.Sync()
		for {
			b, ok := prog.TryRead()
			if !ok {
				break
			}
			m, _ := bindings.DecodeProgress(p.ABI, b)
			res.Progress++
			res.LastSlot = m.CurrentSlot
			res.LeaderReady = res.LeaderReady || m.LeaderState == bindings.LeaderReady
		}
		prog.Finalize()
	}
	for deadline := time.Now().Add(400 * time.Millisecond); time.Now().Before(deadline); {
		drainProgress()
		tpu.Sync()
		for {
			b, ok := tpu.TryRead()
			if !ok {
				break
			}
			m, err := bindings.DecodeTpuToPack(b)
			if err != nil {
				return res, err
			}
			res.TpuRead++
			if len(keep) < 8 && m.Flags&bindings.TpuIsSimpleVote == 0 {
				keep = append(keep, m.Transaction)
				continue
			}
			if err := alloc.Free(m.Transaction.Offset); err != nil {
				return res, err
			}
		}
		tpu.Finalize()
		time.Sleep(5 * time.Millisecond)
	}
	if len(keep) == 0 {
		return res, errors.New("no TPU message arrived")
	}
	switch plant {
	case "leak":
		res.PlantedAt = keep[0].Offset
		keep = keep[1:]
	case "double-free":
		res.PlantedAt = keep[0].Offset
		if err := alloc.Free(keep[0].Offset); err != nil {
			return res, err
		}
	case "double-free-at-once":
		// Freed twice before the validator looks: its allocator refuses
		// the second free.
		res.PlantedAt = keep[0].Offset
		for i := 0; i < 2; i++ {
			if err := alloc.Free(keep[0].Offset); err != nil {
				return res, err
			}
		}
		keep = keep[1:]
	}

	// The batch array lives in a block of the client's own slot.
	newBatch := func() (bindings.SharableTransactionBatchRegion, error) {
		off, ok := alloc.Allocate(len(keep) * bindings.RegionSize)
		if !ok {
			return bindings.SharableTransactionBatchRegion{}, errors.New("allocate batch")
		}
		b := bindings.SharableTransactionBatchRegion{NumTransactions: uint8(len(keep)), TransactionsOffset: off}
		for i, r := range keep {
			if err := b.Put(mem, i, r); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	await := func(c interface {
		TryRead() ([]byte, bool)
		Sync()
		Finalize()
	}, tag bindings.ResponseTag) (bindings.WorkerToPack, error) {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			drainProgress()
			c.Sync()
			if b, ok := c.TryRead(); ok {
				m, err := bindings.DecodeWorkerToPack(p.ABI, tag, b)
				c.Finalize()
				return m, err
			}
			time.Sleep(time.Millisecond)
		}
		return bindings.WorkerToPack{}, errors.New("no worker answer in 5s")
	}

	// EXECUTE on worker 0.
	batch, err := newBatch()
	if err != nil {
		return res, err
	}
	flags, _ := bindings.ExecuteFlags(p.ABI, false, false)
	slotB, ok := toW.Reserve()
	if !ok {
		return res, errors.New("pack_to_worker full")
	}
	_ = bindings.PackToWorker{Flags: flags, MaxWorkingSlot: ^uint64(0), Batch: batch}.Encode(slotB)
	toW.Commit()
	ans, err := await(fromW, bindings.ExecutionResponseTag)
	if err != nil {
		return res, err
	}
	if ans.ProcessedCode != bindings.Processed || ans.Batch != batch {
		return res, fmt.Errorf("execute answer %+v", ans)
	}
	for i := 0; i < int(ans.Responses.NumTransactionResponses); i++ {
		r, err := ans.Responses.ExecutionResponse(mem, i)
		if err != nil {
			return res, err
		}
		res.Reasons = append(res.Reasons, int(r.NotIncludedReason))
		if r.NotIncludedReason == bindings.ReasonNone {
			res.Included++
		}
	}
	if err := alloc.Free(ans.Responses.TransactionResponsesOffset); err != nil {
		return res, err
	}
	if err := alloc.Free(batch.TransactionsOffset); err != nil {
		return res, err
	}

	// CHECK with status, fee payer and lookup tables.
	if batch, err = newBatch(); err != nil {
		return res, err
	}
	cf, _ := bindings.CheckFlags(p.ABI, bindings.Check{StatusChecks: true, LoadFeePayerBalance: true, LoadAddressLookupTables: true})
	if p.CheckQueues {
		toC, fromC := sess.PackToCheck, sess.CheckToPack
		s, ok := toC.Reserve()
		if !ok {
			return res, errors.New("pack_to_check_worker full")
		}
		if p.ABI == bindings.ABI44 {
			_ = bindings.PackToCheckWorker{Flags: cf, Batch: batch}.Encode(p.ABI, s)
		} else {
			_ = bindings.PackToWorker{Flags: cf, MaxWorkingSlot: ^uint64(0), Batch: batch}.Encode(s)
		}
		toC.Commit()
		ans, err = await(fromC, bindings.CheckResponseTag)
	} else {
		s, ok := toW.Reserve()
		if !ok {
			return res, errors.New("pack_to_worker full")
		}
		_ = bindings.PackToWorker{Flags: cf, MaxWorkingSlot: ^uint64(0), Batch: batch}.Encode(s)
		toW.Commit()
		ans, err = await(fromW, bindings.CheckResponseTag)
	}
	if err != nil {
		return res, err
	}
	if ans.ProcessedCode != bindings.Processed {
		return res, fmt.Errorf("check answer %+v", ans)
	}
	for i := 0; i < int(ans.Responses.NumTransactionResponses); i++ {
		r, err := ans.Responses.CheckResponse(p.ABI, mem, i)
		if err != nil {
			return res, err
		}
		res.Checked++
		if r.ResolvedPubkeys.NumPubkeys > 0 {
			res.Pubkeys++
			if err := alloc.Free(r.ResolvedPubkeys.Offset); err != nil {
				return res, err
			}
		}
	}
	if err := alloc.Free(ans.Responses.TransactionResponsesOffset); err != nil {
		return res, err
	}
	if err := alloc.Free(batch.TransactionsOffset); err != nil {
		return res, err
	}
	// Pack may free the payloads once the answers are in.
	for _, r := range keep {
		if err := alloc.Free(r.Offset); err != nil {
			return res, err
		}
	}
	return res, nil
}

// testTraffic is the default story at a twentieth of its rates.
func testTraffic() sim.Config {
	c := sim.DefaultConfig()
	for i := range c.Agents {
		c.Agents[i].PPS /= 20
	}
	return c
}

// startStandin runs a stand-in on a socket in a temporary ledger.
func startStandin(t *testing.T, p bindings.Profile) (*Standin, string, func() error) {
	t.Helper()
	sock := SocketPath(t.TempDir())
	st, err := New(Config{Socket: sock, Profile: p, HugePages: true,
		Clock: ClockConfig{SlotDuration: 100 * time.Millisecond, LeaderWindow: 4, LeaderEvery: 4},
		Feed:  FeedConfig{Traffic: testTraffic(), VotePPS: 200}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- st.Serve(ctx) }()
	stop := func() error {
		cancel()
		return <-errc
	}
	t.Cleanup(func() { cancel() })
	return st, sock, stop
}

// runClientProcess runs the minimal client in a second process.
func runClientProcess(t *testing.T, sock string, p bindings.Profile, plant string) clientResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envClient+"="+sock, envProfile+"="+p.Name, envPlant+"="+plant)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("client process: %v\n%s", err, errb.String())
	}
	var res clientResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("client output %q: %v", out.String(), err)
	}
	return res
}

func TestEndToEndTwoProcesses(t *testing.T) {
	for _, p := range bindings.Profiles() {
		if Supported(p) != nil {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			st, sock, stop := startStandin(t, p)
			res := runClientProcess(t, sock, p, "")
			// Stop at once: the session's audit at its end takes the
			// client's last frees, and a stand-in left running with the
			// client gone ends the session itself once progress_tracker
			// fills (a failed verdict), sooner or later with the load.
			if err := stop(); err != nil {
				t.Fatalf("verdict: %v", err)
			}
			s := st.Stats()
			reps := st.Reports()
			t.Logf("profile %s: client %+v", p.Name, res)
			t.Logf("stats: fed %d (votes %d), sigverify dropped %d, unparsable %d, dedup %d, executed %d, checked %d, not included %v, given %d returned %d undelivered %d",
				s.Fed, s.Votes, s.SigverifyFailed, s.Unparsable, s.Deduplicated, s.Executed, s.Checked, s.NotIncluded,
				s.BlocksGiven, s.BlocksReturned, s.Undelivered)
			if len(reps) != 1 {
				t.Fatalf("%d session reports, want 1", len(reps))
			}
			if res.TpuRead == 0 || res.Progress == 0 || !res.LeaderReady {
				t.Fatalf("client saw too little: %+v", res)
			}
			if res.Included == 0 || s.Executed != uint64(res.Included) {
				t.Fatalf("included: client %d, stand-in %d (reasons %v)", res.Included, s.Executed, res.Reasons)
			}
			if res.Checked == 0 || s.Checked != uint64(res.Checked) {
				t.Fatalf("checked: client %d, stand-in %d", res.Checked, s.Checked)
			}
			if s.SigverifyFailed == 0 || s.Fed == 0 || s.Votes == 0 {
				t.Fatalf("feed: %+v", s)
			}
			if s.Leaks != 0 || s.BadFrees != 0 || s.BlocksReturned == 0 {
				t.Fatalf("audit: leaks %d bad frees %d returned %d", s.Leaks, s.BadFrees, s.BlocksReturned)
			}
		})
	}
}

func TestEndToEndPlantedFaults(t *testing.T) {
	for _, p := range []bindings.Profile{bindings.Profile40, bindings.Profile44} {
		for _, plant := range []string{"leak", "double-free", "double-free-at-once"} {
			t.Run(p.Name+"/"+plant, func(t *testing.T) {
				_, sock, stop := startStandin(t, p)
				res := runClientProcess(t, sock, p, plant)
				// Stop at once, as in TestEndToEndTwoProcesses.
				err := stop()
				if err == nil {
					t.Fatalf("planted %s at %#x passed the audit", plant, res.PlantedAt)
				}
				t.Logf("verdict: %v", err)
				// A double free is refused by the allocator when the block is
				// still free, or seen by the audit when it was handed out
				// again; either way the audit names it with its offset.
				hex := fmt.Sprintf("%#x", res.PlantedAt)
				switch {
				case plant == "leak" && errors.Is(err, ErrLeak) && strings.Contains(err.Error(), hex):
				case strings.HasPrefix(plant, "double-free") && errors.Is(err, ErrDoubleFree) && strings.Contains(err.Error(), hex):
				default:
					t.Fatalf("verdict does not report the planted %s at %s: %v", plant, hex, err)
				}
			})
		}
	}
}

// TestUnsupportedProfileRefused: a profile whose layouts channels/ cannot
// make exactly is refused at New, naming why.
func TestUnsupportedProfileRefused(t *testing.T) {
	p := bindings.Profile43
	p.Name, p.Shaq = "made-up", bindings.ShaqV1_0_2 // shaq 1.0.2 has no MPMC queue
	_, err := New(Config{Socket: SocketPath(t.TempDir()), Profile: p, Feed: FeedConfig{Traffic: testTraffic()}})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "MPMC") {
		t.Fatalf("made-up profile: %v", err)
	}
	for _, p := range bindings.Profiles() {
		if err := Supported(p); err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
	}
}
