package sidecar

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
	"github.com/solqos/qos/sigcache"
	"github.com/solqos/qos/sigverifyfb"
)

// Sidecar owns the channels, the scoring state and the model of one daemon
// run. Open it, Run it on one goroutine, then it closes itself.
//
// Four goroutines share it, each with its own fields: the loop (Run's
// goroutine) owns everything not listed under another; observe, watch and
// saver own nothing and talk to the loop only through the channels in pub
// and the snapshot under mu.
type Sidecar struct {
	// Set by Open, read-only afterwards.
	cfg   Config
	log   *slog.Logger
	learn bool // the policy uses and trains the model
	// penaltyRows: penalties become rows too (learning, a hand-off that
	// takes them).
	penaltyRows bool
	// pending: the model keeps pending claims of the packets sent
	// (learning, Pending.Max > 0).
	pending bool

	// Loop goroutine: the channels it drains and feeds.
	in     [numPacketChannels]*channels.Consumer[channels.Packet]
	sig    *channels.Consumer[channels.Packet]
	sch    *channels.Consumer[channels.RemainingMeta]
	status *channels.Consumer[channels.Signature]
	out    *channels.Producer[channels.Packet]

	// Loop goroutine: the admission and the tables it decides with.
	adm     *admit.Admitter
	queue   *score.Queue
	pacer   *score.Pacer
	partial *admit.PartialStore
	recent  *sigcache.Set
	model   *model.IPSigner

	// Loop goroutine: scratch records the loop pops into; they live here
	// so that nothing escapes per packet.
	batch   [admitBatch]channels.Packet
	txs     [admitBatch]admit.Tx
	decs    [admitBatch]admit.Decision
	touched uint64 // sum of the early loads, kept so they are not optimised away
	pkt     channels.Packet
	// The records send popped (pointers into the queue's slab, valid until
	// the next push) and their recently-confirmed keys.
	outBatch [sendBatch]*channels.Packet
	outKeys  [sendBatch]uint64
	outHash  [sendBatch]uint64
	meta     channels.RemainingMeta
	sigRec   channels.Signature

	// Loop goroutine: counters, clocks and peer bookkeeping.
	snap       Stats // the loop's live counters
	start      time.Time
	rowSeq     uint64          // one sequence over every row kind
	wall       int64           // the current step's row time (unix ns, never steps back)
	stalled    [numInputs]bool // producer heartbeat reported stopped
	joinWarned [numInputs]bool // a failed (re)join was reported
	// Channels whose heartbeat stopped or resumed at this check, reported
	// in one line each; preallocated.
	stopped, resumed []string
	outWindow        uint64 // unread records sigverify can hold without skipping

	nextPublish, nextPeer, nextSave int64
	faults                          faultState // channels detached after a memory fault (fault.go)

	// Between goroutines: the loop sends, the helpers receive (saveErrs:
	// the saver sends, Run receives).
	pub struct {
		snaps    chan Stats                // one slot, latest wins; to observe
		saves    chan []byte               // serialised models; to saver
		files    chan [numInputs]fileState // from watch
		saveErrs chan error
	}
	// mu guards the latest snapshot: observe writes, Latest reads.
	mu struct {
		sync.Mutex
		latest Stats
	}
}

// senderGate is on in production; tests switch it off to compare the
// loop with and without the gate.
var senderGate = true

// Open joins the validator-fed channels, creates or joins qos_to_sig,
// publishes the hash seed, loads the model and allocates every fixed-size
// structure. Nothing is allocated per packet after this.
func Open(cfg Config) (_ *Sidecar, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Sidecar{
		cfg:     cfg,
		log:     log,
		queue:   score.NewQueue(cfg.QueueCapacity, cfg.QueueTTL),
		pacer:   score.NewPacer(cfg.TargetPPS, cfg.PacerTick, pacerBurst(cfg)),
		partial: admit.NewPartialStore(cfg.PartialCapacity),
		recent:  sigcache.New(cfg.RecentCapacity, cfg.Seed),
		learn:   cfg.Policy.Learns(),
		stopped: make([]string, 0, numInputs),
		resumed: make([]string, 0, numInputs),
	}
	s.pub.snaps = make(chan Stats, 1)
	s.pub.saves = make(chan []byte, 1)
	s.pub.files = make(chan [numInputs]fileState, 1)
	s.pub.saveErrs = make(chan error, 1)
	defer func() {
		if err != nil {
			s.closeChannels()
		}
	}()

	for i, name := range packetChannels {
		c, err := channels.OpenConsumer[channels.Packet](cfg.Channels, spec(name))
		if err != nil {
			if s.optional(name) && errors.Is(err, channels.ErrNotExist) {
				log.Info("optional channel absent; it will be joined when it appears", "channel", name, "path", cfg.Channels.Path(name))
				continue
			}
			return nil, err
		}
		s.in[i] = c
	}
	if s.sig, err = channels.OpenConsumer[channels.Packet](cfg.Channels, spec(channels.SigToQoS)); err != nil {
		return nil, err
	}
	if s.sch, err = channels.OpenConsumer[channels.RemainingMeta](cfg.Channels, spec(channels.SchToQoS)); err != nil {
		return nil, err
	}
	s.sch.SetMeta(channels.SeedMetaOffset, cfg.Seed)
	if s.status, err = channels.OpenConsumer[channels.Signature](cfg.Channels, spec(channels.TxStatusCache)); err != nil {
		return nil, err
	}
	if s.out, err = channels.OpenProducer[channels.Packet](cfg.Channels, spec(channels.QoSToSig)); err != nil {
		return nil, err
	}
	s.outWindow = s.out.Window()
	s.penaltyRows = s.learn && cfg.Handoff != nil && cfg.Handoff.Penalties()

	s.model = model.New(cfg.Model)
	if cfg.ModelFile != "" {
		m, err := model.Load(cfg.ModelFile)
		switch {
		case err == nil:
			if err := m.SetParams(cfg.Model); err != nil {
				return nil, fmt.Errorf("model file %s: %w", cfg.ModelFile, err)
			}
			s.model = m
			st := m.Stats()
			log.Info("model loaded", "file", cfg.ModelFile, "ips", st.IPs, "signers", st.Signers)
		case errors.Is(err, fs.ErrNotExist):
			log.Info("no model file yet; starting with an empty model", "file", cfg.ModelFile)
		default:
			return nil, fmt.Errorf("load model (move the file away to start fresh): %w", err)
		}
	}
	if s.learn && cfg.Pending.Max > 0 {
		if err := s.model.TrackPending(cfg.Pending); err != nil {
			return nil, err
		}
		s.pending = true
	}
	s.adm = admit.New(admit.Params{Seed: cfg.Seed, Fees: cfg.Fees, Limits: cfg.Limits, Policy: cfg.Policy}, s.queue, s.partial, s.recent, s.model)
	return s, nil
}

// pacerBurst is the configured burst, or by default 10 ms of the target
// rate: a loop descheduled for a few milliseconds then catches up instead
// of losing that budget.
func pacerBurst(cfg Config) uint64 {
	if cfg.PacerBurst > 0 {
		return cfg.PacerBurst
	}
	return max(cfg.TargetPPS/100, 1)
}

func spec(name string) channels.Spec {
	s, ok := channels.Lookup(name)
	if !ok {
		panic("BUG: channel " + name + " missing from channels.Table")
	}
	return s
}

func (s *Sidecar) optional(name string) bool {
	for _, o := range s.cfg.Optional {
		if o == name {
			return true
		}
	}
	return false
}

// Model returns the loop's model. Only for use before Run or after it
// returned.
func (s *Sidecar) Model() *model.IPSigner { return s.model }

// Latest returns the most recent counter snapshot. Safe from any goroutine
// while Run is going.
func (s *Sidecar) Latest() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.latest
}

// Run drives the loop on the calling goroutine, locked to its OS thread,
// until ctx is done; then it flushes, saves the model and closes the
// channels. It returns the error of the final save or close, if any.
func (s *Sidecar) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// A channel file shrunk under its mapping faults on access: make that
	// a panic the loop recovers (fault.go) instead of a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	var wg sync.WaitGroup
	observeDone := make(chan struct{})
	wg.Add(3)
	go func() { defer wg.Done(); s.observe(observeDone) }()
	go func() { defer wg.Done(); s.watch(observeDone) }()
	go func() { defer wg.Done(); s.saver() }()

	s.start = time.Now()
	s.log.Info("loop started", "policy", s.cfg.Policy.String(), "target_pps", s.cfg.TargetPPS,
		"queue", s.cfg.QueueCapacity, "ttl", s.cfg.QueueTTL, "tick", s.cfg.PacerTick)
	s.loop(ctx.Done())

	// Shut down: last sends are already synced by send; flush rows, stop
	// the helpers, save the model synchronously.
	s.guarded(s.out.Sync)
	if s.cfg.Handoff != nil {
		s.cfg.Handoff.Flush()
	}
	s.publish(time.Now().UnixNano())
	close(s.pub.saves)
	close(observeDone)
	wg.Wait()
	s.logTotals()
	var errs []error
	select {
	case err := <-s.pub.saveErrs:
		errs = append(errs, err)
	default:
	}
	if s.cfg.ModelFile != "" && s.learn {
		if err := s.model.Save(s.cfg.ModelFile); err != nil {
			errs = append(errs, fmt.Errorf("save model: %w", err))
		} else {
			st := s.model.Stats()
			s.log.Info("model saved", "file", s.cfg.ModelFile, "ips", st.IPs, "signers", st.Signers)
		}
	}
	errs = append(errs, s.closeAll())
	return errors.Join(errs...)
}

// loop is the busy loop. REQUIRES: called once, from Run.
func (s *Sidecar) loop(done <-chan struct{}) {
	var (
		idleSince int64 = -1
		prev            = time.Now()
		maxStall  int64
		spins     int
		wall      int64
		worked    bool // the previous iteration handled records
	)
	for iter := uint64(0); ; iter++ {
		if iter&255 == 0 {
			select {
			case <-done:
				return
			default:
			}
		}
		now := time.Now()
		d := now.Sub(prev).Nanoseconds()
		maxStall = max(maxStall, d)
		if worked {
			s.snap.BusyNanos += d
		}
		prev = now
		mono := now.Sub(s.start).Nanoseconds()
		// Rows are replayed in observed-at order: never let the wall clock
		// step back within a run.
		wall = max(wall, now.UnixNano())

		work := s.guardedStep(mono, wall)
		worked = work > 0

		if mono >= s.nextPublish {
			s.snap.Iterations = iter
			if maxStall > s.snap.MaxStallNanos {
				s.snap.MaxStallNanos = maxStall
			}
			maxStall = 0
			s.guardedPeriodic(mono, wall)
		}

		if work > 0 {
			idleSince = -1
			spins = 0
			continue
		}
		if idleSince < 0 {
			idleSince = mono
		}
		spins++
		switch {
		case s.cfg.IdleSleep > 0 && mono-idleSince > int64(time.Millisecond):
			time.Sleep(s.cfg.IdleSleep)
			prev = time.Now() // a chosen sleep is not a stall
		case spins&63 == 0:
			runtime.Gosched()
		}
	}
}

// step runs one pass over every input and the pacer, and returns how many
// records it handled.
func (s *Sidecar) step(mono, wall int64) int {
	s.wall = wall
	if s.pending {
		s.model.ExpirePending(mono)
	}
	n := s.drainStatus()
	for i, c := range s.in {
		if c != nil {
			n += s.drainPackets(uint8(i), c, mono)
		}
	}
	n += s.drainSigFailures()
	n += s.drainResults()
	n += s.send(mono)
	return n
}

func (s *Sidecar) drainStatus() int {
	if s.status == nil {
		return 0
	}
	n := 0
	for n < s.cfg.FeedbackBatch && s.status.Pop(&s.sigRec) {
		s.recent.Add((*[64]byte)(&s.sigRec))
		n++
	}
	s.snap.Counters[StatusSignatures] += uint64(n)
	return n
}

// admitBatch is how many packets drainPackets judges before it admits
// them: their lookups in the million-entry dedup and recently-confirmed
// tables are each a likely cache miss, and loading them together lets
// the misses overlap.
const admitBatch = 16

// drainPackets takes up to PacketBatch packets from one channel, in
// batches of admitBatch, each in four passes (see package admit):
//
//  1. pop each packet;
//  2. judge each in arrival order, applying its penalty (an unparsable
//     packet's source IP) before the next, so every score sees the model
//     exactly as a packet-by-packet loop would;
//  3. peek the dedup and recently-confirmed entries of the packets the
//     queue would take, so their cache misses overlap;
//  4. admit each in order, pushing those admission queues.
//
// A packet the full queue would refuse is counted as rejected_low before
// the dedup and recently-confirmed lookups: it is never queued, so it can
// neither reach sigverify twice nor be joined, and under a flood most
// packets end there at the cost of inspection alone.
func (s *Sidecar) drainPackets(src uint8, c *channels.Consumer[channels.Packet], mono int64) int {
	ac := &s.snap.Admission
	n := 0
	for n < s.cfg.PacketBatch {
		k := 0
		for k < admitBatch && n+k < s.cfg.PacketBatch && c.Pop(&s.batch[k]) {
			k++
		}
		if k == 0 {
			break
		}
		gate := senderGate && s.adm.GateOpen(mono)
		live := 0
		for j := range k {
			s.txs[j] = txOf(src, &s.batch[j])
			if s.adm.Judge(&s.txs[j], &s.decs[j], mono, gate, ac) {
				live++
			}
			s.penalize(&s.txs[j], s.decs[j].Penalty)
		}
		touched := s.adm.PeekEvictions(live)
		for j := range k {
			touched += s.adm.Peek(&s.decs[j])
		}
		s.touched += touched
		for j := range k {
			d := &s.decs[j]
			switch s.adm.Admit(&s.txs[j], d, mono, ac) {
			case admit.Queue:
				ac.Pushed(s.queue.Push(&s.batch[j], d.Score, d.Info.Hash, d.SigKey, mono))
			case admit.Rejected:
				s.penalize(&s.txs[j], d.Penalty)
			}
		}
		n += k
	}
	s.snap.Received[src] += uint64(n)
	return n
}

// txOf is what admission reads of a packet record: score.TxOf's data
// (pointing into the record, no copy), source address and flags.
func txOf(src uint8, p *channels.Packet) admit.Tx {
	data, addr, flags := score.TxOf(p)
	return admit.Tx{Data: data, Addr: addr, Flags: admit.Flags(flags), Channel: src}
}

// penalize applies an admission penalty: the model sinks the source IP of
// an unparsable packet, and the penalty's row is offered.
func (s *Sidecar) penalize(tx *admit.Tx, p admit.Penalty) {
	if p != admit.PenalizeUnparsable {
		return
	}
	s.model.Penalize(model.IPOf(tx.Addr), 0) // what it claimed is unknown
	s.snap.Counters[ParsePenalties]++
	s.offerPenalty(metastore.RowUnparsable, tx.Channel, tx.Addr.As16(), 0, 0)
}

func (s *Sidecar) drainSigFailures() int {
	n := 0
	for n < s.cfg.FeedbackBatch && s.sig.Pop(&s.pkt) {
		n++
		ip, ok := sigverifyfb.Source(&s.pkt)
		if !ok {
			s.snap.Counters[SigverifyBadAddr]++
			continue
		}
		if s.learn {
			// What the packet claimed (fee per CU), from its partial meta
			// when still remembered: a failure weighs what was not paid.
			var fee, cus uint64
			if p, ok := s.partial.Complete(score.PacketHash(s.cfg.Seed, &s.pkt)); ok {
				fee, cus = p.Fee, p.CUs
				s.model.Settle(model.Ticket(p.Ticket))
			}
			claim := 0.0
			if fee > 0 {
				claim = score.Score(1, fee, cus)
			}
			s.model.Penalize(ip, claim)
			if s.penaltyRows {
				addr, _ := s.pkt.Addr() // Source checked the tag
				s.offerPenalty(metastore.RowSigverifyFailed, metastore.SigverifyChannel, addr.As16(), fee, cus)
			}
		}
	}
	s.snap.Counters[SigverifyFailed] += uint64(n)
	return n
}

// offerPenalty hands the row of a penalty just applied to the metastore,
// numbered in the sequence of completed rows so that replay applies every
// input in the loop's order. A small value, no allocation.
func (s *Sidecar) offerPenalty(kind metastore.RowKind, ch uint8, ip [16]byte, fee, cus uint64) {
	if !s.penaltyRows {
		return
	}
	s.rowSeq++
	row := metastore.PenaltyRow(kind, s.rowSeq, s.wall, ch, ip, s.cfg.Seed)
	row.Fee, row.CUs = fee, cus
	if s.cfg.Handoff.Offer(&row) {
		s.snap.Counters[RowsOffered]++
		s.snap.Counters[PenaltyRows]++
	} else {
		s.snap.Counters[RowsDropped]++
	}
}

func (s *Sidecar) drainResults() int {
	n := 0
	for n < s.cfg.FeedbackBatch && s.sch.Pop(&s.meta) {
		n++
		hash, exec := s.meta.Hash(), s.meta.ExecNanos()
		p, ok := s.partial.Complete(hash)
		if !ok {
			s.snap.Counters[Unmatched]++
			continue
		}
		s.snap.Counters[Matched]++
		// The row's Observation is what replay feeds the model: build the
		// loop's from the same row so the two cannot drift apart.
		row := metastore.CompletedRow(&p, hash, s.cfg.Seed, s.wall, exec)
		obs := row.Observation()
		if s.learn {
			s.model.Settle(model.Ticket(p.Ticket))
			t0 := time.Now()
			if s.model.Observe(obs) {
				s.snap.Counters[ModelUpdates]++
				if d := time.Since(t0).Nanoseconds(); d > s.snap.MaxLearnNanos {
					s.snap.MaxLearnNanos = d
				}
			}
		}
		if h := s.cfg.Handoff; h != nil {
			s.rowSeq++
			row.Seq = s.rowSeq
			row.Value = model.Value(s.cfg.Model, obs)
			if h.Offer(&row) {
				s.snap.Counters[RowsOffered]++
			} else {
				s.snap.Counters[RowsDropped]++
			}
		}
	}
	s.snap.Counters[Results] += uint64(n)
	return n
}

// rescoreMax bounds the packets one pop queues again (each then sits
// lower, so a pop ends unless rescoreMax senders all sank at once).
const rescoreMax = 8

// pop returns the next packet to send, its recently-confirmed key and,
// when the model keeps pending claims or rescoring is on, its packet hash
// (else 0).
// Under the model policy with RescoreBelow set, the best packet is scored
// again with the current model (its sender's factors, its fee and CUs
// from the partial meta store): if the score fell below RescoreBelow × the
// admission score — a sender that turned hostile or was found unpaid after
// its packets were queued — the packet is queued again at the new score
// (keeping its enqueue time, so its TTL does not restart) and the next
// best is tried. The packet pushed back reuses the slot it was just popped
// from (the free list is LIFO), so records popped earlier in the same
// send batch stay valid. No allocation.
func (s *Sidecar) pop(mono int64) (*channels.Packet, uint64, uint64, bool) {
	rescore := s.cfg.Policy == PolicyModel && s.learn && s.cfg.RescoreBelow != 0
	if !rescore && !s.pending {
		p, aux, ok := s.queue.Pop(mono)
		return p, aux, 0, ok
	}
	for range rescoreMax {
		p, e, ok := s.queue.PopMax(mono)
		if !ok {
			return nil, 0, 0, false
		}
		if !rescore {
			return p, e.Aux, e.Hash, true
		}
		part, ok := s.partial.Get(e.Hash)
		if !ok {
			return p, e.Aux, e.Hash, true
		}
		now := score.Score(s.model.Forward(model.IPv6(part.IP), model.Signer(part.Signer)), part.Fee, part.CUs)
		if !(now < e.Score*s.cfg.RescoreBelow) {
			return p, e.Aux, e.Hash, true
		}
		s.queue.Push(p, now, e.Hash, e.Aux, e.Enqueued)
		s.snap.Counters[Rescored]++
	}
	p, e, ok := s.queue.PopMax(mono)
	return p, e.Aux, e.Hash, ok
}

// pend gives the model a pending claim for the packet of hash just sent
// (its source IP and fee per CU from the partial meta, as a sigverify
// failure would weigh it) and keeps the ticket with the partial, for the
// outcome to settle. A packet whose partial is gone gets none.
func (s *Sidecar) pend(hash uint64, mono int64) {
	p, ok := s.partial.Get(hash)
	if !ok {
		return
	}
	t := s.model.Pend(model.IPv6(p.IP), score.Score(1, p.Fee, p.CUs), mono)
	s.partial.SetTicket(hash, uint32(t))
}

// sendBatch is how many packets send pops before it checks them against
// the recently-confirmed set: their lookups (a likely cache miss each in
// the million-entry set) are loaded together, as on admission.
const sendBatch = 16

// send releases what the pacer allows, best first, to qos_to_sig, dropping
// the packets whose first signature was confirmed while they were queued
// (the queue keeps each packet's recently-confirmed key from admission).
// When the sigverify consumer publishes its read index and is a full
// window behind (Producer.Window: three quarters of the ring), each
// further packet makes it skip one: that is counted, and with
// OutputBackpressure the packets stay queued instead.
func (s *Sidecar) send(mono int64) int {
	if s.faults.on[chanOut] {
		return 0 // qos_to_sig faulted: keep the packets queued
	}
	budget := s.pacer.Allow(mono)
	if budget == 0 {
		return 0
	}
	unread, known := s.out.Unread()
	sent := 0
	for sent < budget {
		want := min(budget-sent, sendBatch)
		if known && s.cfg.OutputBackpressure {
			if unread >= s.outWindow {
				s.snap.Counters[HeldBack]++
				break
			}
			want = min(want, int(s.outWindow-unread))
		}
		k := 0
		for k < want {
			p, key, hash, ok := s.pop(mono)
			if !ok {
				break
			}
			s.outBatch[k], s.outKeys[k], s.outHash[k] = p, key, hash
			k++
		}
		var touched uint64
		for _, key := range s.outKeys[:k] {
			touched += s.recent.Peek(key)
		}
		s.touched += touched
		for j := range k {
			if s.recent.ContainsKey(s.outKeys[j]) {
				s.snap.Counters[RecentlyConfirmedAtSend]++
				continue
			}
			if known && unread >= s.outWindow {
				s.snap.Counters[OutputOverwrite]++
			}
			s.out.Push(s.outBatch[j])
			if s.pending {
				s.pend(s.outHash[j], mono)
			}
			unread++
			sent++
		}
		if k < want { // the queue is empty
			break
		}
	}
	if sent > 0 {
		s.out.Sync()
		s.pacer.Sent(sent)
		s.snap.Counters[Sent] += uint64(sent)
	}
	return sent
}
