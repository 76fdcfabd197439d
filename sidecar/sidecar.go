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

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
	"github.com/solqos/qos/sigcache"
	"github.com/solqos/qos/sigverifyfb"
)

// Sidecar owns the channels, the scoring state and the model of one daemon
// run. Open it, Run it on one goroutine, then it closes itself.
type Sidecar struct {
	cfg Config
	log *slog.Logger

	in     [numPacketChannels]*channels.Consumer[channels.Packet]
	sig    *channels.Consumer[channels.Packet]
	sch    *channels.Consumer[channels.RemainingMeta]
	status *channels.Consumer[channels.Signature]
	out    *channels.Producer[channels.Packet]

	eval    score.Evaluator
	queue   *score.Queue
	pacer   *score.Pacer
	partial *metastore.PartialStore
	recent  *sigcache.Set
	model   *model.IPSigner
	learn   bool // the policy uses and trains the model
	// gateOff disables the sender gate (tests compare the loop with and
	// without it).
	gateOff bool
	// feedbackRows: penalties become rows too (learning, a hand-off that
	// takes them).
	feedbackRows bool

	// Scratch records the loop pops into; they live here so that nothing
	// escapes per packet.
	batch   [admitBatch]channels.Packet
	evals   [admitBatch]evaluated
	touched uint64 // sum of the early loads, kept so they are not optimised away
	pkt     channels.Packet
	// The records send popped (pointers into the queue's slab, valid until
	// the next push) and their recently-confirmed keys.
	outBatch [sendBatch]*channels.Packet
	outKeys  [sendBatch]uint64
	meta     channels.RemainingMeta
	sigRec   channels.Signature

	snap       Snapshot // the loop's live counters
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

	// Published state, read by other goroutines.
	snaps    chan Snapshot // one slot, latest wins
	saves    chan []byte   // serialised models for the saver goroutine
	files    chan [numInputs]fileState
	mu       sync.Mutex
	latest   Snapshot
	saveErrs chan error
}

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
		cfg:      cfg,
		log:      log,
		eval:     score.Evaluator{Seed: cfg.Seed, Fees: cfg.Fees, Limits: cfg.Limits},
		queue:    score.NewQueue(cfg.QueueCapacity, cfg.QueueTTL),
		pacer:    score.NewPacer(cfg.TargetPPS, cfg.PacerTick, pacerBurst(cfg)),
		partial:  metastore.NewPartialStore(cfg.PartialCapacity),
		recent:   sigcache.New(cfg.RecentCapacity, cfg.Seed),
		learn:    cfg.Policy == PolicyModel,
		snaps:    make(chan Snapshot, 1),
		saves:    make(chan []byte, 1),
		files:    make(chan [numInputs]fileState, 1),
		stopped:  make([]string, 0, numInputs),
		resumed:  make([]string, 0, numInputs),
		saveErrs: make(chan error, 1),
	}
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
	s.feedbackRows = s.learn && cfg.Handoff != nil && cfg.Handoff.Feedback()

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
func (s *Sidecar) Latest() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest
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
	close(s.saves)
	close(observeDone)
	wg.Wait()
	s.logTotals()
	var errs []error
	select {
	case err := <-s.saveErrs:
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

// admitBatch is how many packets drainPackets evaluates before it admits
// them: their lookups in the million-entry dedup and recently-confirmed
// tables are each a likely cache miss, and loading them together lets
// the misses overlap.
const admitBatch = 16

// evaluated is one packet of a batch between evaluation and admission.
type evaluated struct {
	info  score.Info
	rej   score.Reject
	gated bool // refused by the sender gate; info and rej are not set
	// ipFactor is the sender's model.IPFactor when judge read it (gated
	// packets keep it for admitGated).
	ipFactor float64
	score    float64
	// sigKey is the recently-confirmed key of signature 0 (never 0) and
	// info.Hash the packet hash, both computed once the queue would take
	// the packet; until then 0.
	sigKey uint64
}

// drainPackets takes up to PacketBatch packets from one channel, in
// batches of admitBatch, each in four passes:
//
//  1. pop each packet;
//  2. judge each in arrival order: the sender gate, or inspection (check,
//     parse, price), counting rejections and penalising the sources of
//     unparsable packets, and scoring the rest (the only model changes
//     here are those penalties, so every score sees the model exactly as
//     a packet-by-packet loop would);
//  3. load the dedup and recently-confirmed entries of the packets the
//     queue would take, so their cache misses overlap;
//  4. admit each in order: queue check, recently-confirmed check, dedup
//     insert, queue push (a gated packet: the gate's check again).
//
// A packet the full queue would refuse is counted as rejected_low before
// the dedup and recently-confirmed lookups: it is never queued, so it can
// neither reach sigverify twice nor be joined, and under a flood most
// packets end there at the cost of evaluation alone.
func (s *Sidecar) drainPackets(src uint8, c *channels.Consumer[channels.Packet], mono int64) int {
	n := 0
	for n < s.cfg.PacketBatch {
		k := 0
		for k < admitBatch && n+k < s.cfg.PacketBatch && c.Pop(&s.batch[k]) {
			k++
		}
		if k == 0 {
			break
		}
		gate := s.gateOpen(mono)
		live := 0
		for j := range k {
			if s.judge(src, &s.batch[j], &s.evals[j], mono, gate) {
				live++
			}
		}
		touched := s.partial.PeekEvictions(live)
		for j := range k {
			if e := &s.evals[j]; e.sigKey != 0 {
				touched += s.recent.Peek(e.sigKey) + s.partial.Peek(e.info.Hash)
			}
		}
		s.touched += touched
		for j := range k {
			switch e := &s.evals[j]; {
			case e.gated:
				s.admitGated(src, &s.batch[j], e, mono)
			case e.rej == score.OK:
				s.admitEvaluated(src, &s.batch[j], e, mono)
			}
		}
		n += k
	}
	s.snap.Received[src] += uint64(n)
	return n
}

// judge takes one packet in arrival order: the sender gate may refuse it
// unparsed (gated, its IP factor kept for admitGated); otherwise it is
// inspected, a rejected one counted (and its source penalised when it did
// not parse), an accepted one scored. It reports whether the queue would
// take the packet as it stands now.
func (s *Sidecar) judge(src uint8, p *channels.Packet, e *evaluated, mono int64, gate bool) bool {
	e.sigKey, e.gated = 0, false
	ipf := -1.0 // the sender's model.IPFactor, once read
	if gate {
		if addr, ok := p.Addr(); ok {
			ipf = s.model.IPFactor(model.IPOf(addr))
			if !s.queue.Admits(s.bound(ipf), mono) {
				e.gated, e.ipFactor = true, ipf
				return false
			}
		}
	}
	if !s.inspect(src, p, e, ipf) || !s.queue.Admits(e.score, mono) {
		return false
	}
	s.keys(p, e)
	return true
}

// inspect checks, parses and prices p into e and scores it under the
// policy, with ipf the sender's model.IPFactor when already read (else
// -1). A rejected packet goes to reject. It reports whether p was
// accepted.
func (s *Sidecar) inspect(src uint8, p *channels.Packet, e *evaluated, ipf float64) bool {
	e.info, e.rej = s.eval.Inspect(p)
	if e.rej != score.OK {
		s.reject(src, p, e.rej)
		return false
	}
	b := e.info.Budget
	switch s.cfg.Policy {
	case PolicyModel:
		if ipf < 0 {
			addr, _ := p.Addr() // Inspect checked the tag
			ipf = s.model.IPFactor(model.IPOf(addr))
		}
		// IPFactor × SignerFactor is Forward, bit for bit.
		e.score = score.Score(ipf*s.model.SignerFactor(model.Signer(e.info.Payer)), b.Fee, b.CUs)
	case PolicyFeeOnly:
		e.score = score.Score(1, b.Fee, b.CUs)
	default: // FIFO: equal scores, the queue keeps arrival order
		e.score = 0
	}
	return true
}

// reject counts a packet Inspect rejected and, when it did not parse and
// the policy learns, penalises its source IP and offers the penalty's row.
func (s *Sidecar) reject(src uint8, p *channels.Packet, rej score.Reject) {
	s.snap.Rejects[rej]++
	if rej.Parse() && s.learn {
		if addr, ok := p.Addr(); ok {
			s.model.Penalize(model.IPOf(addr), 0) // what it claimed is unknown
			s.snap.Counters[ParsePenalties]++
			s.offerFeedback(metastore.RowUnparsable, src, addr.As16(), 0, 0)
		}
	}
}

// The sender gate. Under the model policy a packet scores
// IPFactor(ip) × SignerFactor(payer) × fee / max(cus, score.MinScoreCUs), at most
// bound(IPFactor(ip)) whatever its signer and fee (float rounding is
// monotone). When the full queue would refuse even that, the packet would
// end as rejected_low after parsing; judge refuses it first and spares
// the parse, most of what a packet from a sunk spammer costs. The
// decision is taken in arrival order with the model as a packet-by-packet
// loop would see it, and confirmed at admission, where the queue may have
// become easier to enter (an expired entry surfacing): see admitGated. An
// unparsable gated packet is not parsed, so it does not penalise its
// already sunk IP again.

// bound is the highest score a packet from an IP with factor ipf can
// reach.
func (s *Sidecar) bound(ipf float64) float64 {
	return ipf * s.model.MaxSignerFactor() * score.MaxFeePerCU
}

// gateOpen reports whether the gate can refuse anything in the batch: the
// queue refuses the bound of the lowest IP factor there is. Otherwise the
// gate's lookups are skipped.
func (s *Sidecar) gateOpen(mono int64) bool {
	return s.cfg.Policy == PolicyModel && !s.gateOff &&
		!s.queue.Admits(s.bound(s.model.MinIPFactor()), mono)
}

// admitGated confirms a gate refusal at the packet's turn in admission.
// If the queue would now take the packet's bound, the packet is inspected
// and scored with the IP factor of its turn in judge (the signer factors
// do not change within a batch), exactly as judge would have, and
// admitted as any other.
func (s *Sidecar) admitGated(src uint8, p *channels.Packet, e *evaluated, mono int64) {
	if !s.queue.Admits(s.bound(e.ipFactor), mono) {
		s.snap.Counters[Gated]++
		return
	}
	e.gated = false
	if s.inspect(src, p, e, e.ipFactor) {
		s.admitEvaluated(src, p, e, mono) // computes the keys (sigKey is 0)
	}
}

// keys computes the packet hash and the recently-confirmed key of an
// accepted packet, which only the lookups after the queue check need.
func (s *Sidecar) keys(p *channels.Packet, e *evaluated) {
	e.info.Hash = score.PacketHash(s.cfg.Seed, p)
	// An accepted packet has at least one signature, at SigOff (1, or
	// after the message for v1).
	o := int(e.info.SigOff)
	e.sigKey = s.recent.Key(p[o : o+64])
}

// admitEvaluated takes one accepted, scored packet through the queue
// check, the recently-confirmed check, dedup and the queue. The
// per-packet path: no allocation, no system call.
func (s *Sidecar) admitEvaluated(src uint8, p *channels.Packet, e *evaluated, mono int64) {
	sc := e.score
	if !s.queue.Admits(sc, mono) {
		s.snap.Counters[RejectedLow]++
		return
	}
	if e.sigKey == 0 { // the queue's bar moved down since evaluation
		s.keys(p, e)
	}
	if s.recent.ContainsKey(e.sigKey) {
		s.snap.Counters[RecentlyConfirmed]++
		return
	}
	addr, _ := p.Addr() // Inspect checked the tag
	b := e.info.Budget
	if s.partial.Insert(e.info.Hash, metastore.Partial{
		ArrivedAt: mono,
		Channel:   src,
		IP:        addr.As16(),
		Signer:    e.info.Payer,
		Fee:       b.Fee,
		CUs:       b.CUs,
		CUPrice:   b.CUPrice,
		Score:     sc,
	}) {
		s.snap.Counters[Duplicates]++
		return
	}
	admitted, evicted := s.queue.Push(p, sc, e.info.Hash, e.sigKey, mono)
	switch {
	case !admitted: // not reached: Admits said yes and nothing changed since
		s.snap.Counters[RejectedLow]++
	case evicted:
		s.snap.Counters[Admitted]++
		s.snap.Counters[Evicted]++
	default:
		s.snap.Counters[Admitted]++
	}
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
			}
			claim := 0.0
			if fee > 0 {
				claim = score.Score(1, fee, cus)
			}
			s.model.Penalize(ip, claim)
			if s.feedbackRows {
				addr, _ := s.pkt.Addr() // Source checked the tag
				s.offerFeedback(metastore.RowSigverifyFailed, metastore.SigverifyChannel, addr.As16(), fee, cus)
			}
		}
	}
	s.snap.Counters[SigverifyFailed] += uint64(n)
	return n
}

// offerFeedback hands the row of a penalty just applied to the metastore,
// numbered in the sequence of completed rows so that replay applies every
// input in the loop's order. A small value, no allocation.
func (s *Sidecar) offerFeedback(kind metastore.RowKind, ch uint8, ip [16]byte, fee, cus uint64) {
	if !s.feedbackRows {
		return
	}
	s.rowSeq++
	row := metastore.FeedbackRow(kind, s.rowSeq, s.wall, ch, ip, s.cfg.Seed)
	row.Fee, row.CUs = fee, cus
	if s.cfg.Handoff.Offer(&row) {
		s.snap.Counters[RowsOffered]++
		s.snap.Counters[FeedbackRows]++
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
			s.snap.Counters[JoinMisses]++
			continue
		}
		s.snap.Counters[Joined]++
		// The row's Observation is what replay feeds the model: build the
		// loop's from the same row so the two cannot drift apart.
		row := metastore.Join(&p, hash, s.cfg.Seed, 0, s.wall, exec, 0)
		obs := row.Observation()
		if s.learn {
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

// pop returns the next packet to send and its recently-confirmed key.
// Under the model policy with RescoreBelow set, the best packet is scored
// again with the current model (its sender's factors, its fee and CUs
// from the partial meta store): if the score fell below RescoreBelow × the
// admission score — a sender that turned hostile or was found unpaid after
// its packets were queued — the packet is queued again at the new score
// (keeping its enqueue time, so its TTL does not restart) and the next
// best is tried. The packet pushed back reuses the slot it was just popped
// from (the free list is LIFO), so records popped earlier in the same
// send batch stay valid. No allocation.
func (s *Sidecar) pop(mono int64) (*channels.Packet, uint64, bool) {
	if s.cfg.Policy != PolicyModel || !s.learn || s.cfg.RescoreBelow == 0 {
		return s.queue.Pop(mono)
	}
	for range rescoreMax {
		p, e, ok := s.queue.PopMax(mono)
		if !ok {
			return nil, 0, false
		}
		part, ok := s.partial.Get(e.Hash)
		if !ok {
			return p, e.Aux, true
		}
		now := score.Score(s.model.Forward(model.IPv6(part.IP), model.Signer(part.Signer)), part.Fee, part.CUs)
		if !(now < e.Score*s.cfg.RescoreBelow) {
			return p, e.Aux, true
		}
		s.queue.Push(p, now, e.Hash, e.Aux, e.Enqueued)
		s.snap.Counters[Rescored]++
	}
	return s.queue.Pop(mono)
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
			p, key, ok := s.pop(mono)
			if !ok {
				break
			}
			s.outBatch[k], s.outKeys[k] = p, key
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
