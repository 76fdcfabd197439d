package standin

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
	"github.com/solqos/qos/score"
	"github.com/solqos/qos/sim"
)

// TestFeederMessages: what reaches tpu_to_pack is what Agave's
// tpu_to_pack sends: sigverified, deduplicated transactions in blocks of
// slot 0, with the sender's address (IPv4 mapped into IPv6) and flags,
// and a ground truth for each.
func TestFeederMessages(t *testing.T) {
	rig := newFeedRig(t, 32<<20, rtsalloc.V5, shaq.V4, 8192)
	ar, feedA, prod, packA, cons := rig.mem, rig.feedA, rig.prod, rig.packA, rig.cons

	traffic := sim.DefaultConfig()
	cfg := FeedConfig{Traffic: traffic, VotePPS: 1000, PayerBalance: 1 << 40, UnfundedShare: 0.25}
	tr, err := sim.NewTraffic(cfg.Traffic)
	if err != nil {
		t.Fatal(err)
	}
	bank := NewBank(BankConfig{})
	bank.SetSlot(5, true)
	fundBank(bank, tr, &cfg)
	var st counters
	truth := newTruthTable(1 << 20)
	audit := NewAudit()
	// 50 ms of the story's traffic is due at once.
	f := newFeeder(tr, &cfg, feedA, ar.Bytes(), prod, prod.Capacity(), bank, audit, &st, truth, time.Now().Add(-50*time.Millisecond))
	// Feed until the due packets are out or the queue nears full (under
	// the race detector feeding is slower than the story's 96 000/s).
	for f.round() == feedBatchMax && prod.Len() < prod.Capacity()-2*feedBatchMax {
	}
	s := st.snapshot()
	if s.Fed == 0 || s.Votes == 0 || s.SigverifyFailed == 0 || s.Unparsable == 0 || s.Deduplicated == 0 {
		t.Fatalf("feed counts %+v", s)
	}
	if s.Generated+s.Votes != s.Fed+s.SigverifyFailed+s.Unparsable+s.Deduplicated+s.DroppedAlloc+s.DroppedQueue {
		t.Fatalf("counts do not add up: %+v", s)
	}
	mem := ar.Bytes()
	var sv sim.Sigverify
	var v score.View
	h := bank.LatestBlockhash()
	n, forwarded, v6, votes, unfundedSeen := 0, 0, 0, 0, 0
	eachFed(t, cons, mem, func(m bindings.TpuToPack, data []byte) {
		if !sv.Verify(data) || v.Parse(data) != score.OK || [32]byte(v.RecentBlockhash(data)) != h {
			t.Fatalf("message %d: not a verified transaction on the bank's blockhash", n)
		}
		ip := netip.AddrFrom16(m.SrcAddr)
		if !ip.IsValid() || ip.IsUnspecified() {
			t.Fatalf("message %d: source %v", n, ip)
		}
		if ip.Is4In6() {
			if m.SrcAddr[10] != 0xff || m.SrcAddr[11] != 0xff {
				t.Fatalf("message %d: IPv4 not mapped as ::ffff:a.b.c.d: %x", n, m.SrcAddr)
			}
		} else {
			v6++
		}
		var sig [64]byte
		copy(sig[:], data[1:65])
		tt, ok := truth.m[sig]
		if !ok {
			t.Fatalf("message %d: no ground truth", n)
		}
		if tt.Flags != m.Flags {
			t.Fatalf("message %d: truth flags %v, message %v", n, tt.Flags, m.Flags)
		}
		switch {
		case m.Flags&bindings.TpuIsSimpleVote != 0:
			votes++
			if tt.Agent != -1 || m.Flags&bindings.TpuFromStakedNode == 0 {
				t.Fatalf("vote %d: %+v", n, tt)
			}
		case m.Flags&bindings.TpuForwarded != 0:
			forwarded++
			if traffic.Agents[tt.Agent].Channel != "fwd" || m.Flags&bindings.TpuFromStakedNode == 0 {
				t.Fatalf("message %d: forwarded flag on agent %d", n, tt.Agent)
			}
		default:
			if traffic.Agents[tt.Agent].Channel == "fwd" {
				t.Fatalf("message %d: fwd agent without the forwarded flag", n)
			}
		}
		if tt.Agent >= 0 {
			bud, _ := v.Budget(data, score.DefaultFeeParams())
			bal, _ := bank.Balance(v.FeePayer(data))
			if bud.Fee != tt.Fee || (bal >= tt.Fee) != tt.Funded {
				t.Fatalf("message %d: truth %+v, fee %d, balance %d", n, tt, bud.Fee, bal)
			}
			if !tt.Funded {
				unfundedSeen++
			}
		}
		if err := packA.Free(m.Transaction.Offset); err != nil {
			t.Fatal(err)
		}
		n++
	})
	cons.Finalize()
	if uint64(n) != s.Fed || forwarded == 0 || v6 == 0 || votes == 0 || unfundedSeen == 0 {
		t.Fatalf("read %d of %d fed; forwarded %d, IPv6 %d, votes %d, unfunded %d", n, s.Fed, forwarded, v6, votes, unfundedSeen)
	}
	prod.Sync()
	f.readIdx = f.nmsg - uint64(prod.Len())
	f.alloc.CleanRemoteFrees(f.visit)
	f.judgeEarly(f.readIdx)
	if err := audit.Final(); err != nil {
		t.Fatal(err)
	}
}

// TestProgressMessages: the progress tracker publishes the remaining block
// cost and latest blockhash only while a leader bank is ready, and moves
// the bank's slot.
func TestProgressMessages(t *testing.T) {
	r, err := shm.Create("progress", shaq.MinimumFileSize(shaq.V3, bindings.ProgressSize(bindings.ABI41), 64), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_ = shaq.Create(r, shaq.V3, bindings.ProgressSize(bindings.ABI41))
	prod, _ := shaq.NewProducer(r, shaq.V3, bindings.ProgressSize(bindings.ABI41))
	cons, _ := shaq.NewConsumer(r, shaq.V3, bindings.ProgressSize(bindings.ABI41))
	clock := DefaultClockConfig()
	clock.StartSlot = 8 // a leader window [8, 11], then [16, 19]
	bank := NewBank(BankConfig{})
	read := func() bindings.Progress {
		t.Helper()
		cons.Sync()
		b, ok := cons.TryRead()
		if !ok {
			t.Fatal("no progress message")
		}
		m, err := bindings.DecodeProgress(bindings.ABI41, b)
		cons.Finalize()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tick := clock.TickDuration()
	tests := []struct {
		at    time.Duration
		state bindings.LeaderState
	}{
		{tick / 2, bindings.LeaderStarting},
		{3 * tick / 2, bindings.LeaderReady},
		{4*clock.SlotDuration + tick, bindings.NotLeader},
	}
	for _, tc := range tests {
		p := &progressPub{clock: clock, abi: bindings.ABI41, out: prod, bank: bank, start: time.Now().Add(-tc.at)}
		if err := p.tick(); err != nil {
			t.Fatal(err)
		}
		m := read()
		slot, active := bank.Working()
		if m.LeaderState != tc.state || m.CurrentSlot != slot || active != (tc.state == bindings.LeaderReady) {
			t.Fatalf("at %v: %+v (bank slot %d active %v)", tc.at, m, slot, active)
		}
		if tc.state == bindings.LeaderReady {
			if m.RemainingCostUnits != MaxBlockUnits || m.LatestBlockhash != bank.LatestBlockhash() || m.LeaderRangeEnd != 11 {
				t.Fatalf("ready: %+v", m)
			}
		} else if m.RemainingCostUnits != 0 || m.LatestBlockhash != ([32]byte{}) || m.Epoch != 0 {
			t.Fatalf("%v: bank fields set: %+v", tc.state, m)
		}
	}
	// A queue the scheduler never drains ends the session.
	p := &progressPub{clock: clock, abi: bindings.ABI41, out: prod, bank: bank, start: time.Now()}
	var last error
	for i := 0; i < 200 && last == nil; i++ {
		p.has = false
		last = p.tick()
	}
	if !errors.Is(last, ErrQueueFull) {
		t.Fatalf("full progress queue: %v", last)
	}
}

// TestServeReplacesStaleSocket: a socket file left by a dead validator is
// removed and bound again (Agave's server does the same).
func TestServeReplacesStaleSocket(t *testing.T) {
	sock := SocketPath(t.TempDir())
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	st, err := New(Config{Socket: sock, Profile: bindings.Profile41, Feed: FeedConfig{Traffic: testTraffic()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- st.Serve(ctx) }()
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	var fds *handshake.Fds
	for {
		fds, err = handshake.Dial(dctx, sock, bindings.Profile41, handshake.Logon{WorkerCount: 1, AllocatorSize: 8 << 20,
			AllocatorHandles: 1, TpuToPackCapacity: 64, ProgressCapacity: 4096, PackToWorkerCapacity: 8, WorkerToPackCapacity: 8})
		if err == nil || dctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("logon after a stale socket: %v", err)
	}
	_ = fds.Close()
	for deadline := time.Now().Add(5 * time.Second); st.Stats().Sessions == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st.Stats().Sessions != 1 {
		t.Fatalf("sessions %d", st.Stats().Sessions)
	}
}

// TestFeederDropsRestOfBatchWhenFull: with tpu_to_pack full, the packets
// of the batch that pass sigverify and dedup are dropped and counted, and
// the blocks they would have used are not leaked.
func TestFeederDropsRestOfBatchWhenFull(t *testing.T) {
	rig := newFeedRig(t, 16<<20, rtsalloc.V2, shaq.V1_0_2, 64)
	ar, feedA, prod := rig.mem, rig.feedA, rig.prod
	cfg := FeedConfig{Traffic: sim.DefaultConfig(), PayerBalance: 1 << 40}
	tr, _ := sim.NewTraffic(cfg.Traffic)
	bank := NewBank(BankConfig{})
	fundBank(bank, tr, &cfg)
	var st counters
	audit := NewAudit()
	f := newFeeder(tr, &cfg, feedA, ar.Bytes(), prod, prod.Capacity(), bank, audit, &st, newTruthTable(1<<20), time.Now().Add(-time.Second))
	if n := f.round(); n != feedBatchMax {
		t.Fatalf("round handled %d, want a full batch of %d", n, feedBatchMax)
	}
	s := st.snapshot()
	if s.Fed != uint64(prod.Capacity()) || s.DroppedQueue == 0 {
		t.Fatalf("capacity %d: fed %d, dropped for a full queue %d", prod.Capacity(), s.Fed, s.DroppedQueue)
	}
	if s.Generated != s.Fed+s.SigverifyFailed+s.Unparsable+s.Deduplicated+s.DroppedQueue+s.DroppedAlloc {
		t.Fatalf("counts do not add up: %+v", s)
	}
	if feedA.LiveBlocks() != prod.Capacity() || len(audit.Outstanding()) != prod.Capacity() {
		t.Fatalf("live blocks %d, outstanding %d, want %d (one per published message)", feedA.LiveBlocks(), len(audit.Outstanding()), prod.Capacity())
	}
}

// TestFeederStaleAndReplays: with StaleShare and ReplayShare set, part of
// what reaches tpu_to_pack names a blockhash the bank no longer knows
// (BLOCKHASH_NOT_FOUND when executed) and copies of transactions fed
// more than the dedup window ago come again (ALREADY_PROCESSED when the
// first copy was included); copies within the window are still dropped.
func TestFeederStaleAndReplays(t *testing.T) {
	rig := newFeedRig(t, 64<<20, rtsalloc.V5, shaq.V4, 16384)
	ar, feedA, prod, cons := rig.mem, rig.feedA, rig.prod, rig.cons

	cfg := FeedConfig{Traffic: sim.DefaultConfig(), PayerBalance: 1 << 40, StaleShare: 0.1, ReplayShare: 0.3, DedupWindow: 10 * time.Millisecond}
	tr, err := sim.NewTraffic(cfg.Traffic)
	if err != nil {
		t.Fatal(err)
	}
	bank := NewBank(BankConfig{BlockCostLimit: 1 << 62, AccountCostLimit: 1 << 62})
	bank.SetSlot(5, true)
	fundBank(bank, tr, &cfg)
	var st counters
	truth := newTruthTable(1 << 20)
	// 30 ms of the story is due at once; replays come due 10 ms after
	// their first copy on the wall clock. Feed until some have been fed
	// (or tpu_to_pack is nearly full, or a generous deadline), however
	// the rounds are spread in time on a loaded machine: catching up may
	// take less than the window or much more.
	f := newFeeder(tr, &cfg, feedA, ar.Bytes(), prod, prod.Capacity(), bank, NewAudit(), &st, truth, time.Now().Add(-30*time.Millisecond))
	room := func() bool { return prod.Len() < prod.Capacity()-2*feedBatchMax }
	for deadline := time.Now().Add(5 * time.Second); room() && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		for f.round() > 0 && room() {
		}
		if st.snapshot().Replayed > 0 {
			break
		}
	}
	s := st.snapshot()
	if s.Stale == 0 || s.Replayed == 0 || s.Deduplicated == 0 {
		t.Fatalf("feed counts %+v: want stale, replayed and deduplicated packets", s)
	}
	if s.Generated+s.Replayed != s.Fed+s.SigverifyFailed+s.Unparsable+s.Deduplicated+s.DroppedAlloc+s.DroppedQueue {
		t.Fatalf("counts do not add up: %+v", s)
	}
	mem := ar.Bytes()
	first := map[[64]byte]Reason{}
	var stale, replays, processed uint64
	batch := make([]txn, 1)
	out := make([]result, 1)
	eachFed(t, cons, mem, func(m bindings.TpuToPack, data []byte) {
		var sig [64]byte
		copy(sig[:], data[1:65])
		batch[0] = txn{}
		batch[0].load(data, bank.tables, bank.fp)
		bank.execute(batch, false, out)
		bank.release(batch)
		got := out[0].reason
		if batch[0].blockhash == staleHash {
			stale++
			if got != ReasonBlockhashNotFound || !truth.m[sig].Stale {
				t.Fatalf("stale transaction: %v, truth %+v", got, truth.m[sig])
			}
			return
		}
		prev, seen := first[sig]
		if !seen {
			first[sig] = got
			return
		}
		replays++
		if prev == ReasonNone {
			processed++
			if got != ReasonAlreadyProcessed {
				t.Fatalf("replay of an included transaction: %v, want ALREADY_PROCESSED", got)
			}
		}
	})
	// The story's own duplicates that come after the window pass too.
	if stale != s.Stale || replays < s.Replayed || processed == 0 {
		t.Fatalf("read %d stale, %d replays (%d of included ones); fed %+v", stale, replays, processed, s)
	}
}

// TestFeederAgentShares: per-agent shares spoil only the agents they
// name (the spammer's payers empty, half its packets stale, still
// verifying), forwarded packets arrive from the configured forwarders
// (a sender keeps its forwarder), and every truth carries the cost the
// bank charges and the writable accounts.
func TestFeederAgentShares(t *testing.T) {
	rig := newFeedRig(t, 64<<20, rtsalloc.V5, shaq.V4, 16384)
	ar, feedA, prod, cons := rig.mem, rig.feedA, rig.prod, rig.cons

	valid := []sim.MixConfig{{Kind: sim.KindValid, Weight: 1, PriceMedian: 1000, PriceSigma: 0.5, CUMin: 10_000, CUMax: 100_000}}
	traffic := sim.DefaultConfig()
	traffic.Agents = []sim.AgentConfig{
		{Name: "honest", Channel: "tpu", PPS: 20_000, IPBase: "10.1.0.1", IPCount: 4, Signers: 8, V0Share: 0.5, Mix: valid},
		{Name: "spam", Channel: "tpu", PPS: 20_000, IPBase: "198.51.100.1", IPCount: 4, Signers: 8, V0Share: 0.5, Mix: valid},
		{Name: "relayed", Channel: "fwd", PPS: 20_000, IPBase: "10.9.0.1", IPCount: 64, Signers: 8, Mix: valid},
	}
	fwds := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}
	cfg := FeedConfig{Traffic: traffic, PayerBalance: 1 << 40, AgentShares: map[string]Shares{"spam": {Unfunded: 1, Stale: 0.5}},
		Forwarders: fwds}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := sim.NewTraffic(cfg.Traffic)
	if err != nil {
		t.Fatal(err)
	}
	bank := NewBank(BankConfig{})
	bank.SetSlot(5, true)
	fundBank(bank, tr, &cfg)
	var st counters
	truth := newTruthTable(1 << 20)
	f := newFeeder(tr, &cfg, feedA, ar.Bytes(), prod, prod.Capacity(), bank, NewAudit(), &st, truth, time.Now().Add(-50*time.Millisecond))
	for f.round() > 0 && prod.Len() < prod.Capacity()-2*feedBatchMax {
	}
	mem := ar.Bytes()
	var sv sim.Sigverify
	live := bank.LatestBlockhash()
	var n [3]int
	spamStale, spamFed := 0, 0
	var ld txn
	eachFed(t, cons, mem, func(m bindings.TpuToPack, data []byte) {
		var sig [64]byte
		copy(sig[:], data[1:65])
		tt := truth.m[sig]
		ld.load(data, bank.tables, bank.fp)
		if !sv.Verify(data) || ld.reason != ReasonNone {
			t.Fatalf("agent %d: a fed transaction that does not verify or load (%v)", tt.Agent, ld.reason)
		}
		if tt.Cost != ld.cost || tt.NWritable == 0 || tt.Writable[0] != binary.LittleEndian.Uint64(ld.payer[:8]) {
			t.Fatalf("agent %d: truth cost %d, writable %x (%d); the bank charges %d", tt.Agent, tt.Cost, tt.Writable, tt.NWritable, ld.cost)
		}
		stale := ld.blockhash == staleHash
		if stale != tt.Stale || !stale && ld.blockhash != live {
			t.Fatalf("agent %d: blockhash %x, truth stale %v", tt.Agent, ld.blockhash[:4], tt.Stale)
		}
		src := netip.AddrFrom16(m.SrcAddr).Unmap()
		switch tt.Agent {
		case 0:
			if !tt.Funded || stale || src.As4()[0] != 10 {
				t.Fatalf("honest: %+v from %v", tt, src)
			}
		case 1:
			spamFed++
			if stale {
				spamStale++
			}
			if tt.Funded {
				t.Fatalf("spam: funded %+v", tt)
			}
		case 2:
			if src != fwds[0] && src != fwds[1] || m.Flags&bindings.TpuForwarded == 0 {
				t.Fatalf("relayed: from %v, flags %v", src, m.Flags)
			}
		}
		n[tt.Agent]++
	})
	cons.Finalize()
	if n[0] == 0 || n[1] == 0 || n[2] == 0 {
		t.Fatalf("fed per agent %v", n)
	}
	if share := float64(spamStale) / float64(spamFed); share < 0.35 || share > 0.65 {
		t.Fatalf("spam stale share %.2f of %d, want about 0.5", share, spamFed)
	}
	// A sender keeps its forwarder; both forwarders carry traffic.
	a, same := netip.MustParseAddr("10.9.0.7"), netip.AddrFrom4([4]byte{10, 9, 0, 7})
	if f.source(a, 1) != f.source(same, 1) || f.source(a, 0) != a {
		t.Fatal("source: a sender's forwarder changed, or a direct packet was re-addressed")
	}
	seen := map[netip.Addr]bool{}
	for i := range 64 {
		seen[f.source(netip.AddrFrom4([4]byte{10, 9, 0, byte(i)}), 1)] = true
	}
	if len(seen) != len(fwds) {
		t.Fatalf("64 senders use forwarders %v", seen)
	}
}

// TestFeedConfigValidate: shares outside [0, 1], shares for an agent the
// traffic lacks and invalid forwarders are refused.
func TestFeedConfigValidate(t *testing.T) {
	base := func() FeedConfig { return FeedConfig{Traffic: sim.DefaultConfig()} }
	tests := []struct {
		name  string
		edit  func(*FeedConfig)
		valid bool
	}{
		{"defaults", func(*FeedConfig) {}, true},
		{"agent shares", func(c *FeedConfig) {
			c.AgentShares = map[string]Shares{"spammer": {Unfunded: 1, Stale: 0.3, Replay: 0.3}}
		}, true},
		{"unknown agent", func(c *FeedConfig) { c.AgentShares = map[string]Shares{"nobody": {}} }, false},
		{"agent share above 1", func(c *FeedConfig) { c.AgentShares = map[string]Shares{"spammer": {Stale: 1.5}} }, false},
		{"negative default", func(c *FeedConfig) { c.ReplayShare = -0.1 }, false},
		{"NaN default", func(c *FeedConfig) { c.StaleShare = math.NaN() }, false},
		{"invalid forwarder", func(c *FeedConfig) { c.Forwarders = []netip.Addr{{}} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.valid {
				t.Fatalf("Validate() = %v, want valid %v", err, tt.valid)
			}
		})
	}
}
