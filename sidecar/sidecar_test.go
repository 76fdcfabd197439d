package sidecar

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

func ipN(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}) }

// onePenalty is the factor of an IP after one failure in an empty model
// with the default parameters: the newcomer, /16, /24 and IP records each
// average the failure with their prior, whose weight is k' = 4·(1-1/200).
var onePenalty = math.Pow(3.98/4.98, 4)

func payerN(i int) [32]byte {
	var k [32]byte
	binary.LittleEndian.PutUint64(k[:], uint64(i)+1)
	k[31] = 0x77
	return k
}

func sigN(i int) [64]byte {
	var s [64]byte
	binary.LittleEndian.PutUint64(s[:], uint64(i)+1)
	s[63] = 0x55
	return s
}

// TestRanksByFeePerCU: with an empty model every key scores 1, so the
// loop must send in fee-per-CU order whatever the arrival order.
func TestRanksByFeePerCU(t *testing.T) {
	h := newHarness(t, nil)
	const n = 100
	for i := range n {
		// arrival order scrambled against price order
		price := uint64((i*37)%n+1) * 1000
		x := tx{payer: payerN(i), sig: sigN(i), limit: 200_000, price: price, nonce: uint64(i)}
		p := x.packet(t, ipN(i))
		h.tpu.Push(&p)
	}
	h.tpu.Sync()
	for range 4 {
		h.s.drainPackets(0, h.s.in[0], 0)
	}
	if got := h.s.snap.Received[0]; got != n {
		t.Fatalf("received %d, want %d", got, n)
	}
	var mono int64
	out := h.sendAll(&mono)
	if len(out) != n {
		t.Fatalf("sent %d packets, want %d", len(out), n)
	}
	var v score.View
	prev := uint64(1 << 62)
	for i := range out {
		data := out[i].Data()
		if r := v.Parse(data); r != score.OK {
			t.Fatalf("output %d does not parse: %v", i, r)
		}
		b, r := v.Budget(data, score.DefaultFeeParams())
		if r != score.OK {
			t.Fatalf("output %d budget: %v", i, r)
		}
		if b.CUPrice > prev {
			t.Fatalf("output %d has price %d after %d: not in score order", i, b.CUPrice, prev)
		}
		prev = b.CUPrice
	}
	if got := h.s.snap.Counters[Sent]; got != n {
		t.Errorf("sent counter %d, want %d", got, n)
	}
}

// TestPacerPaces: the loop never sends more than the pacer allows.
func TestPacerPaces(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.TargetPPS = 1000; c.PacerBurst = 1 }) // one per ms
	for i := range 50 {
		x := tx{payer: payerN(i), sig: sigN(i), limit: 1000, price: 1, nonce: uint64(i)}
		p := x.packet(t, ipN(i))
		h.tpu.Push(&p)
	}
	h.tpu.Sync()
	h.s.drainPackets(0, h.s.in[0], 0)
	sent := 0
	for ms := int64(1); ms <= 20; ms++ {
		sent += h.s.send(ms * int64(time.Millisecond))
	}
	if sent < 19 || sent > 21 {
		t.Fatalf("sent %d packets in 20 ms at 1000 pps with burst 1", sent)
	}
}

func TestAdmissionOutcomes(t *testing.T) {
	// No pending claims: the packets sent in the step would count as
	// claims of the unparsable sender's /24 and /16 and lift its score
	// above that of one failed outcome (TestPendingClaims covers them).
	h := newHarness(t, func(c *Config) { c.Pending.Max = 0 })
	good := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 5, nonce: 1}
	p := good.packet(t, ipN(1))
	h.tpu.Push(&p)
	h.fwd.Push(&p) // same packet twice: duplicate

	big := p
	big.SetSize(channels.PacketDataSize + 1)
	h.tpu.Push(&big)

	discard := p
	discard.SetFlags(channels.FlagDiscard)
	h.tpu.Push(&discard)

	garbage := p
	garbage.SetData([]byte{0, 1, 2}) // zero signatures: a parse failure
	garbage.SetAddr(ipN(66))
	h.tpu.Push(&garbage)

	confirmed := tx{payer: payerN(2), sig: sigN(2), limit: 10_000, price: 5, nonce: 2}
	sig := channels.Signature(sigN(2))
	h.status.Push(&sig)
	h.status.Sync()
	cp := confirmed.packet(t, ipN(2))
	h.tpu.Push(&cp)

	v6 := tx{payer: payerN(3), sig: sigN(3), limit: 10_000, price: 5, nonce: 3}
	pv6 := v6.packet(t, netip.MustParseAddr("2001:db8::1"))
	h.tpu.Push(&pv6)
	h.tpu.Sync()
	h.fwd.Sync()

	h.s.step(0, time.Now().UnixNano())

	c := &h.s.snap
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"received tpu", c.Received[0], 6},
		{"received fwd", c.Received[1], 1},
		{"duplicates", c.Admission.Events[admit.EventDuplicates], 1},
		{"size rejects", c.Admission.Rejects[score.RejectSize], 1},
		{"discard rejects", c.Admission.Rejects[score.RejectDiscard], 1},
		{"parse penalties", c.Counters[ParsePenalties], 1},
		{"recently confirmed", c.Admission.Events[admit.EventRecentlyConfirmed], 1},
		{"admitted (one IPv4, one IPv6)", c.Admission.Events[admit.EventAdmitted], 2},
		{"status signatures", c.Counters[StatusSignatures], 1},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %d, want %d", ck.name, ck.got, ck.want)
		}
	}
	// The unparsable packet's IP entered the model with one failed
	// outcome (see onePenalty).
	if s, ok := h.s.model.IPScore(model.IPOf(ipN(66))); !ok || math.Abs(s-onePenalty) > 1e-12 {
		t.Errorf("unparsable sender's score = %v (known %v), want %v", s, ok, onePenalty)
	}
}

// TestFullQueueRefusesBeforeDedup: a packet the full queue refuses is not
// remembered for dedup (it never reached the queue), so a later copy is
// admitted once there is room, and reaches sigverify exactly once; a copy
// of a packet that was queued stays a duplicate.
func TestFullQueueRefusesBeforeDedup(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.QueueCapacity = 1 })
	high := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 500, nonce: 1}
	low := tx{payer: payerN(2), sig: sigN(2), limit: 10_000, price: 5, nonce: 2}
	hp, lp := high.packet(t, ipN(1)), low.packet(t, ipN(2))
	push := func(ps ...*channels.Packet) {
		t.Helper()
		for _, p := range ps {
			h.tpu.Push(p)
		}
		h.tpu.Sync()
		h.s.drainPackets(0, h.s.in[0], 0)
	}
	push(&hp, &lp, &lp)
	c := &h.s.snap.Admission.Events
	if c[admit.EventAdmitted] != 1 || c[admit.EventRejectedLow] != 2 || c[admit.EventDuplicates] != 0 {
		t.Fatalf("admitted %d, rejected_low %d, duplicates %d; want 1, 2, 0", c[admit.EventAdmitted], c[admit.EventRejectedLow], c[admit.EventDuplicates])
	}
	var mono int64
	out := h.sendAll(&mono)
	push(&lp, &hp)
	out = append(out, h.sendAll(&mono)...)
	if c[admit.EventAdmitted] != 2 || c[admit.EventDuplicates] != 1 {
		t.Fatalf("admitted %d, duplicates %d; want 2, 1", c[admit.EventAdmitted], c[admit.EventDuplicates])
	}
	if len(out) != 2 || out[0] != hp || out[1] != lp {
		t.Fatalf("sent %d packets, want the high then the low one, once each", len(out))
	}
}

// TestBatchScoresSeePenaltiesInOrder: within one batch, a packet scored
// after an unparsable packet from its IP sees that IP's penalty, as a
// packet-by-packet loop would.
func TestBatchScoresSeePenaltiesInOrder(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.QueueCapacity = 1 })
	a := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 5, nonce: 1}
	b := tx{payer: payerN(2), sig: sigN(2), limit: 10_000, price: 5, nonce: 2}
	ap, bp := a.packet(t, ipN(1)), b.packet(t, ipN(2))
	garbage := ap
	garbage.SetData([]byte{0, 1, 2})
	// All three in one batch: the garbage penalises ipN(1), so ap scores
	// below bp and bp evicts it; scored before the penalty, the two would
	// tie and bp would be refused.
	for _, p := range []*channels.Packet{&garbage, &ap, &bp} {
		h.tpu.Push(p)
	}
	h.tpu.Sync()
	if n := h.s.drainPackets(0, h.s.in[0], 0); n != 3 {
		t.Fatalf("drained %d packets, want 3", n)
	}
	c, ev := &h.s.snap.Counters, &h.s.snap.Admission.Events
	if c[ParsePenalties] != 1 || ev[admit.EventAdmitted] != 2 || ev[admit.EventEvicted] != 1 {
		t.Fatalf("penalties %d, admitted %d, evicted %d; want 1, 2, 1", c[ParsePenalties], ev[admit.EventAdmitted], ev[admit.EventEvicted])
	}
	var mono int64
	if out := h.sendAll(&mono); len(out) != 1 || out[0] != bp {
		t.Fatalf("sent %d packets, want only the unpenalised sender's", len(out))
	}
}

// TestOutputRingFull: once sigverify has published its read index and
// fallen a full window (3/4 of the ring) behind, each further send makes
// it skip a packet and is counted; with backpressure the packets stay
// queued instead, and leave once sigverify reads.
func TestOutputRingFull(t *testing.T) {
	for _, backpressure := range []bool{false, true} {
		t.Run(fmt.Sprintf("backpressure=%v", backpressure), func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.TargetPPS = 1 << 40
				c.QueueCapacity = 16384
				c.PartialCapacity = 1 << 17
				c.OutputBackpressure = backpressure
			})
			tr := newTraffic(t, 4096)
			var mono int64
			round := func(n int) {
				t.Helper()
				tr.push(h.tpu, n)
				for got := 0; got < n; {
					got += h.s.drainPackets(0, h.s.in[0], mono)
				}
				mono += int64(time.Millisecond)
				h.s.send(mono)
			}
			// Sigverify reads one packet, which publishes its head.
			round(1)
			if got := len(h.drain()); got != 1 {
				t.Fatalf("sigverify read %d packets, want 1", got)
			}
			window := int(h.s.outWindow)
			extra := 5000
			for left := window + extra; left > 0; left -= 8192 {
				round(min(left, 8192))
			}
			c := &h.s.snap.Counters
			if backpressure {
				if c[Sent] != uint64(1+window) || c[OutputOverwrite] != 0 || c[HeldBack] == 0 {
					t.Fatalf("sent %d, overwrites %d, held back %d; want %d, 0, > 0", c[Sent], c[OutputOverwrite], c[HeldBack], 1+window)
				}
				if h.s.queue.Len() != extra {
					t.Fatalf("%d packets still queued, want %d", h.s.queue.Len(), extra)
				}
				// Sigverify catches up: the held packets leave.
				if got := len(h.drain()); got != window {
					t.Fatalf("sigverify read %d packets, want %d", got, window)
				}
				mono += int64(time.Millisecond)
				h.s.send(mono)
				if h.s.queue.Len() != 0 || c[Sent] != uint64(1+window+extra) {
					t.Fatalf("after sigverify read: %d queued, %d sent", h.s.queue.Len(), c[Sent])
				}
				return
			}
			if c[Sent] != uint64(1+window+extra) || c[OutputOverwrite] != uint64(extra) || c[HeldBack] != 0 {
				t.Fatalf("sent %d, overwrites %d, held back %d; want %d, %d, 0", c[Sent], c[OutputOverwrite], c[HeldBack], 1+window+extra, extra)
			}
		})
	}
}

func TestRecentlyConfirmedAtSend(t *testing.T) {
	h := newHarness(t, nil)
	x := tx{payer: payerN(1), sig: sigN(7), limit: 10_000, price: 5, nonce: 1}
	p := x.packet(t, ipN(1))
	h.tpu.Push(&p)
	h.tpu.Sync()
	h.s.drainPackets(0, h.s.in[0], 0)
	sig := channels.Signature(sigN(7))
	h.status.Push(&sig)
	h.status.Sync()
	h.s.drainStatus()
	var mono int64
	if out := h.sendAll(&mono); len(out) != 0 {
		t.Fatalf("sent %d packets confirmed while queued", len(out))
	}
	if got := h.s.snap.Counters[RecentlyConfirmedAtSend]; got != 1 {
		t.Fatalf("recently confirmed at send = %d, want 1", got)
	}
}

func TestSigverifyFeedbackPenalizes(t *testing.T) {
	h := newHarness(t, nil)
	x := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 5, nonce: 1}
	p := x.packet(t, ipN(9))
	p.SetFlags(channels.FlagDiscard)
	h.sig.Push(&p)
	var bad channels.Packet
	bad[1240] = 7 // invalid address tag
	h.sig.Push(&bad)
	h.sig.Sync()
	h.s.drainSigFailures()
	if got := h.s.snap.Counters[SigverifyFailed]; got != 2 {
		t.Fatalf("sigverify failures = %d, want 2", got)
	}
	if got := h.s.snap.Counters[SigverifyBadAddr]; got != 1 {
		t.Fatalf("bad-address failures = %d, want 1", got)
	}
	s, ok := h.s.model.IPScore(model.IPOf(ipN(9)))
	if !ok || math.Abs(s-onePenalty) > 1e-12 {
		t.Fatalf("penalised unknown IP score = %v (known %v), want %v (one failure at four levels)", s, ok, onePenalty)
	}
	if f := h.s.model.Forward(model.IPOf(ipN(9)), payerN(1)); f != s {
		t.Fatalf("forward after penalty = %v, want the IP factor %v (unknown signer: 1)", f, s)
	}
}

// TestResultsJoinLearnAndRow: scheduler results are joined with their
// partial metadata, feed the model and become metastore rows.
func TestResultsJoinLearnAndRow(t *testing.T) {
	handoff := metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 8, Batches: 4})
	h := newHarness(t, func(c *Config) {
		c.Handoff = handoff
		c.Model.MinObservations = 5
	})
	const n = 10
	hashes := make([]uint64, n)
	for i := range n {
		x := tx{payer: payerN(1), sig: sigN(i), limit: 100_000, price: 10, nonce: uint64(i)}
		p := x.packet(t, ipN(1))
		hashes[i] = score.PacketHash(0x5eed, &p)
		h.tpu.Push(&p)
	}
	h.tpu.Sync()
	h.s.drainPackets(0, h.s.in[0], 0)
	for i, hash := range hashes {
		var m channels.RemainingMeta
		m.Set(hash, uint64(1000*(i%2))) // half executed
		h.sch.Push(&m)
	}
	var miss channels.RemainingMeta
	miss.Set(12345, 1)
	h.sch.Push(&miss)
	h.sch.Sync()
	h.s.wall = time.Now().UnixNano()
	h.s.drainResults()

	c := &h.s.snap
	if c.Counters[Matched] != n || c.Counters[Unmatched] != 1 || c.Counters[ModelUpdates] != n {
		t.Fatalf("matched %d, unmatched %d, updates %d; want %d, 1, %d", c.Counters[Matched], c.Counters[Unmatched], c.Counters[ModelUpdates], n, n)
	}
	if c.Counters[RowsOffered] != n || handoff.Offered() != n {
		t.Fatalf("rows offered %d (handoff %d), want %d", c.Counters[RowsOffered], handoff.Offered(), n)
	}
	// Every result taught the model at once: the sender's IP and signer
	// have records, and half paid shows in the IP's factor.
	if s, ok := h.s.model.IPScore(model.IPOf(ipN(1))); !ok || !(s > 0.4 && s < 0.9) {
		t.Fatalf("sender's IP factor %v (known %v) after 5 of 10 paid", s, ok)
	}
	if _, ok := h.s.model.SignerScore(payerN(1)); !ok {
		t.Fatal("sender's signer not learned")
	}
}

// TestRunSavesAndLoadsModel: Run stops on cancel, saves the model, and the
// next Open loads it.
func TestRunSavesAndLoadsModel(t *testing.T) {
	file := filepath.Join(t.TempDir(), "model.bin")
	h := newHarness(t, func(c *Config) { c.ModelFile = file; c.IdleSleep = 100 * time.Microsecond })
	h.s.model.Penalize(model.IPOf(ipN(3)), 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	m, err := model.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := m.IPScore(model.IPOf(ipN(3))); !ok || math.Abs(s-onePenalty) > 1e-12 {
		t.Fatalf("saved model has score %v (known %v) for the penalised IP", s, ok)
	}

	cfg := testConfig(h.opts)
	cfg.ModelFile = file
	s2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.closeChannels()
	if d := model.Diff(m, s2.model, 0); len(d) != 0 {
		t.Fatalf("reopened model differs from the saved one: %v", d)
	}
}

// TestLoopBusyTime: the loop counts as busy only the iterations that
// handled records: little while the channels are empty, a good part of a
// flood, never more than the time it ran.
func TestLoopBusyTime(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IdleSleep = 100 * time.Microsecond })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- h.s.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	idle := h.s.Latest()
	idleFor := time.Since(start)

	tr := newTraffic(t, 1024)
	floodStart := time.Now()
	for time.Since(floodStart) < 300*time.Millisecond {
		tr.push(h.tpu, 64)
	}
	time.Sleep(150 * time.Millisecond) // a snapshot after the flood
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	end := h.s.Latest()
	if end.TotalReceived() == 0 {
		t.Fatal("the flood never reached the loop")
	}
	if idle.BusyNanos > int64(idleFor/10) {
		t.Errorf("busy %v of %v with empty channels", time.Duration(idle.BusyNanos), idleFor)
	}
	if flood := end.BusyNanos - idle.BusyNanos; flood < int64(30*time.Millisecond) {
		t.Errorf("busy %v during a 300 ms flood (%d packets received)", time.Duration(flood), end.TotalReceived())
	}
	if end.BusyNanos > int64(total) {
		t.Errorf("busy %v in a run of %v", time.Duration(end.BusyNanos), total)
	}
}

func TestOpenErrors(t *testing.T) {
	o := testOptions(t)
	cfg := testConfig(o)
	_, err := Open(cfg)
	if !errors.Is(err, channels.ErrNotExist) {
		t.Fatalf("Open with no channels: %v, want ErrNotExist", err)
	}
	createChannels(t, o)
	bad := filepath.Join(t.TempDir(), "model.bin")
	if err := writeFile(bad, []byte("not a model")); err != nil {
		t.Fatal(err)
	}
	cfg.ModelFile = bad
	if _, err := Open(cfg); err == nil {
		t.Fatal("Open with a corrupt model file succeeded")
	}
	cfg.ModelFile = ""
	cfg.TargetPPS = 0
	if _, err := Open(cfg); err == nil {
		t.Fatal("Open with target-pps 0 succeeded")
	}
}

// TestOptionalChannelJoinedLater: relayer channels absent at start are
// joined once they appear.
func TestOptionalChannelJoinedLater(t *testing.T) {
	o := testOptions(t)
	for _, s := range channels.Table {
		if s.Name == channels.RE1 || s.Name == channels.RE2 {
			continue
		}
		if _, err := channels.Create(o, s); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(testConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	defer s.closeChannels()
	if s.in[2] != nil || s.in[3] != nil {
		t.Fatal("absent relayer channels reported joined")
	}
	re1 := openProducer[channels.Packet](t, o, channels.RE1)
	s.pub.files <- s.statFiles()
	s.checkPeers()
	if s.in[2] == nil {
		t.Fatal("re1_to_qos not joined after it appeared")
	}
	x := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 5, nonce: 1}
	p := x.packet(t, ipN(1))
	re1.Push(&p)
	re1.Sync()
	s.step(0, 0)
	if s.snap.Received[2] != 1 {
		t.Fatalf("received on re1 = %d, want 1", s.snap.Received[2])
	}
}

// TestSenderGateChangesNothingSent: with the queue full of honest packets,
// a sunk spammer's packets are refused before parsing (gated) instead of
// after scoring (rejected_low); what reaches sigverify is the same, packet
// for packet, as without the gate.
func TestSenderGateChangesNothingSent(t *testing.T) {
	run := func(gateOff bool) (out []channels.Packet, c Stats) {
		h := newHarness(t, func(c *Config) {
			c.QueueCapacity, c.TargetPPS, c.PacerBurst = 32, 1000, 1
			// The gate refuses an IP whose factor × the highest possible
			// fee per CU cannot enter the queue: a factor near MinScore.
			// A sender that only ever fails has a rate of exactly 0; a
			// negligible prior weight lets its factor reach the floor
			// (with the default weight a failing IP keeps about 1e-5 of
			// its neighbourhood's rate, too much for that bound), and no
			// newcomer record lets the spammer's failures lower the
			// honest IPs' prior.
			c.Model.PriorWeight, c.Model.MinObservations = 1e-20, 0
		})
		setSenderGate(t, !gateOff)
		spamIP := netip.MustParseAddr("66.66.66.66")
		var mono int64
		nonce := uint64(0)
		for round := range 30 {
			for i := range 40 { // more than the queue holds: it stays full of them
				nonce++
				x := tx{payer: payerN(i % 7), sig: sigN(int(nonce)), limit: 10_000, price: uint64(1_000_000 + 1000*i + round), nonce: nonce}
				p := x.packet(t, ipN(i))
				h.tpu.Push(&p)
			}
			for i := range 200 {
				nonce++
				x := tx{payer: payerN(100 + i%3), sig: sigN(int(nonce)), limit: 200_000, price: 1, nonce: nonce}
				p := x.packet(t, spamIP)
				if i%2 == 0 {
					p.SetData([]byte{0, 1, 2}) // unparsable: penalises the spammer
				}
				h.tpu.Push(&p)
			}
			h.tpu.Sync()
			for got := 0; got < 240; {
				got += h.s.drainPackets(0, h.s.in[0], mono)
			}
			mono += int64(10 * time.Millisecond)
			h.s.send(mono)
			out = append(out, h.drain()...)
		}
		return out, h.s.snap
	}
	withGate, cg := run(false)
	without, cn := run(true)
	t.Logf("with gate: gated %d rejected_low %d penalties %d; without: rejected_low %d penalties %d; sent %d", cg.Event(admit.EventGated), cg.Event(admit.EventRejectedLow), cg.Counters[ParsePenalties], cn.Event(admit.EventRejectedLow), cn.Counters[ParsePenalties], len(withGate))
	if cg.Event(admit.EventGated) == 0 || cn.Event(admit.EventGated) != 0 {
		t.Fatalf("gated %d with the gate, %d without; want > 0 and 0", cg.Event(admit.EventGated), cn.Event(admit.EventGated))
	}
	if len(withGate) == 0 || len(withGate) != len(without) {
		t.Fatalf("sent %d packets with the gate, %d without", len(withGate), len(without))
	}
	for i := range withGate {
		if withGate[i] != without[i] {
			t.Fatalf("packet %d sent differs with the gate", i)
		}
	}
	if cg.Event(admit.EventAdmitted) != cn.Event(admit.EventAdmitted) {
		t.Errorf("admitted %d with the gate, %d without", cg.Event(admit.EventAdmitted), cn.Event(admit.EventAdmitted))
	}
	if cg.Counters[ParsePenalties] >= cn.Counters[ParsePenalties] {
		t.Errorf("parse penalties %d with the gate, %d without: gated packets are not parsed", cg.Counters[ParsePenalties], cn.Counters[ParsePenalties])
	}
}

// TestSenderGateEdgeCases: cases where the queue or the model becomes
// easier to pass within one batch; the gate must still admit exactly what
// the loop without it admits.
//   - expired: a push evicts the fresh minimum and exposes an expired
//     entry, so the queue takes anything; a gated packet later in the batch
//     must get in, as it would ungated.
//   - evicted: a parse penalty on a new IP evicts a sunk IP's records
//     (the least recently updated), which becomes unknown and scores the
//     unknown prior again; its packet later in the batch must be scored,
//     not gated.
func TestSenderGateEdgeCases(t *testing.T) {
	spam := netip.MustParseAddr("66.66.66.66")
	garbageFrom := func(t *testing.T, addr netip.Addr) channels.Packet {
		x := tx{payer: payerN(900), sig: sigN(900), limit: 10_000, price: 1, nonce: 900}
		p := x.packet(t, addr)
		p.SetData([]byte{0, 1, 2})
		return p
	}
	pkt := func(t *testing.T, i int, addr netip.Addr, price uint64) channels.Packet {
		x := tx{payer: payerN(i), sig: sigN(i), limit: 10_000, price: price, nonce: uint64(i)}
		return x.packet(t, addr)
	}
	feed := func(h *harness, mono int64, ps ...channels.Packet) {
		for i := range ps {
			h.tpu.Push(&ps[i])
		}
		h.tpu.Sync()
		for got := 0; got < len(ps); {
			got += h.s.drainPackets(0, h.s.in[0], mono)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		play func(t *testing.T, h *harness)
	}{
		{"expired", func(c *Config) { c.QueueCapacity = 4; c.QueueTTL = time.Second }, func(t *testing.T, h *harness) {
			sink := make([]channels.Packet, 20)
			for i := range sink {
				sink[i] = garbageFrom(t, spam)
			}
			feed(h, 0, sink...)
			feed(h, 0, pkt(t, 1, ipN(1), 5_000_000), pkt(t, 2, ipN(2), 9_000_000), pkt(t, 3, ipN(3), 9_000_001))
			second := int64(1500 * time.Millisecond)
			feed(h, second, pkt(t, 4, ipN(4), 1_000_000)) // the fresh minimum; entry 1 has expired
			// One batch: a high packet evicts the fresh minimum, exposing
			// the expired entry; then a packet from the sunk spammer.
			feed(h, second, pkt(t, 5, ipN(5), 9_000_002), pkt(t, 6, spam, 1))
		}},
		{"evicted", func(c *Config) { c.QueueCapacity = 4; c.Model.MaxIPs, c.Model.MaxPrefixes = 4, 2 }, func(t *testing.T, h *harness) {
			x := netip.MustParseAddr("77.77.77.77")
			for range 250 {
				h.s.model.Penalize(model.IPOf(x), 0) // sunk: a full window of failures
			}
			for i := range 3 { // x becomes the least recently updated IP, /24 and /16
				for range 25 {
					h.s.model.Penalize(model.IPOf(ipN(100+i)), 0)
				}
			}
			feed(h, 0, pkt(t, 1, ipN(1), 5_000_000), pkt(t, 2, ipN(2), 5_000_001), pkt(t, 3, ipN(3), 5_000_002), pkt(t, 4, ipN(4), 5_000_003))
			// One batch: garbage from a new IP evicts x's records (IP,
			// /24, /16), so x scores as unknown again; then x's packet.
			feed(h, 0, garbageFrom(t, netip.MustParseAddr("88.88.88.88")), pkt(t, 5, x, 50_000_000))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var admitted [2]uint64
			var queued [2][]uint64
			for i, gateOff := range []bool{false, true} {
				h := newHarness(t, tc.edit)
				setSenderGate(t, !gateOff)
				tc.play(t, h)
				admitted[i] = h.s.snap.Admission.Events[admit.EventAdmitted]
				for h.s.queue.Len() > 0 {
					_, e, _ := h.s.queue.PopMax(0)
					queued[i] = append(queued[i], e.Hash)
				}
			}
			if admitted[0] != admitted[1] || !slices.Equal(queued[0], queued[1]) {
				t.Fatalf("with the gate: admitted %d, queued %x; without: %d, %x", admitted[0], queued[0], admitted[1], queued[1])
			}
		})
	}
}

// TestRescoreAtSend: packets queued while their sender looked good are
// scored again at send; once the sender has sunk (a window of failed
// claims), they go back into the queue below an honest sender's cheaper
// packets instead of leaving first.
func TestRescoreAtSend(t *testing.T) {
	h := newHarness(t, nil)
	farmed := netip.MustParseAddr("198.51.100.20")
	var ps []channels.Packet
	for i := range 5 {
		x := tx{payer: payerN(1), sig: sigN(100 + i), limit: 10_000, price: 50_000_000, nonce: uint64(i)}
		ps = append(ps, x.packet(t, farmed))
	}
	for i := range 5 {
		x := tx{payer: payerN(2), sig: sigN(200 + i), limit: 10_000, price: 1_000_000, nonce: uint64(100 + i)}
		ps = append(ps, x.packet(t, ipN(i)))
	}
	for i := range ps {
		h.tpu.Push(&ps[i])
	}
	h.tpu.Sync()
	h.s.drainPackets(0, h.s.in[0], 0)
	for range h.s.cfg.Model.Window { // the farmed IP turns hostile while its packets wait
		h.s.model.Penalize(model.IPOf(farmed), 1e9)
	}
	var mono int64
	out := h.sendAll(&mono)
	if len(out) != 10 {
		t.Fatalf("sent %d packets, want all 10 (rescored ones go later, not away)", len(out))
	}
	for i, p := range out[:5] {
		if a, _ := p.Addr(); a == farmed {
			t.Fatalf("packet %d sent is the sunk sender's", i)
		}
	}
	// The honest packets may be rescored too: the farmed IP's first
	// failures taught the newcomer prior, which their unknown IPs use.
	if got := h.s.snap.Counters[Rescored]; got < 5 {
		t.Fatalf("rescored %d, want at least the 5 packets of the sunk sender", got)
	}
}
