package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
)

// Prepare creates the eight channel files under cfg.Channels, as the
// validator would before qos joins them. Files that already exist and are
// initialised are left as they are.
func Prepare(cfg Config) error {
	for _, s := range channels.Table {
		if _, err := channels.Create(cfg.Channels, s); err != nil {
			return fmt.Errorf("prepare channel %s: %w", s.Name, err)
		}
	}
	return nil
}

// Cleanup removes the eight channel files under cfg.Channels; files that
// do not exist are not an error.
func Cleanup(cfg Config) error {
	var errs []error
	for _, s := range channels.Table {
		if err := channels.Remove(cfg.Channels, s); err != nil && !errors.Is(err, channels.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove channel %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Loop tuning.
const (
	batchMax  = 1024 // records per visit of a channel
	beatEvery = int64(10 * time.Millisecond)
	idleSleep = 200 * time.Microsecond // consumer's sleep when qos_to_sig is empty
	maxSleep  = time.Millisecond       // producer's longest sleep before re-checking
)

// validator holds the channels of a Run, from the validator's side.
type validator struct {
	in     [4]*channels.Producer[channels.Packet] // tpu, fwd, re1, re2
	out    *channels.Consumer[channels.Packet]    // qos_to_sig
	sig    *channels.Producer[channels.Packet]    // sig_to_qos
	sch    *channels.Producer[channels.RemainingMeta]
	status *channels.Producer[channels.Signature]
}

func openValidator(o channels.Options) (*validator, error) {
	v := &validator{}
	if err := v.open(o); err != nil {
		_ = v.close()
		return nil, err
	}
	return v, nil
}

func (v *validator) open(o channels.Options) error {
	var err error
	for i := range v.in {
		if v.in[i], err = channels.OpenProducer[channels.Packet](o, channels.Table[i]); err != nil {
			return fmt.Errorf("open %s: %w", channels.Table[i].Name, err)
		}
	}
	spec := func(name string) channels.Spec { s, _ := channels.Lookup(name); return s }
	if v.sig, err = channels.OpenProducer[channels.Packet](o, spec(channels.SigToQoS)); err != nil {
		return fmt.Errorf("open %s: %w", channels.SigToQoS, err)
	}
	if v.sch, err = channels.OpenProducer[channels.RemainingMeta](o, spec(channels.SchToQoS)); err != nil {
		return fmt.Errorf("open %s: %w", channels.SchToQoS, err)
	}
	if v.status, err = channels.OpenProducer[channels.Signature](o, spec(channels.TxStatusCache)); err != nil {
		return fmt.Errorf("open %s: %w", channels.TxStatusCache, err)
	}
	if v.out, err = channels.OpenConsumer[channels.Packet](o, spec(channels.QoSToSig)); err != nil {
		return fmt.Errorf("open %s (run Prepare first): %w", channels.QoSToSig, err)
	}
	return nil
}

func (v *validator) close() error {
	var errs []error
	for _, p := range v.in {
		if p != nil {
			p.Sync()
			errs = append(errs, p.Close())
		}
	}
	if v.sig != nil {
		v.sig.Sync()
		errs = append(errs, v.sig.Close())
	}
	if v.sch != nil {
		v.sch.Sync()
		errs = append(errs, v.sch.Close())
	}
	if v.status != nil {
		v.status.Sync()
		errs = append(errs, v.status.Close())
	}
	if v.out != nil {
		errs = append(errs, v.out.Close())
	}
	return errors.Join(errs...)
}

// hashSeed returns cfg's seed, or waits for the sidecar to publish one in
// sch_to_qos metadata.
func (v *validator) hashSeed(ctx context.Context, cfg *Config) (uint64, error) {
	if cfg.HashSeed != 0 {
		return cfg.HashSeed, nil
	}
	deadline := time.Now().Add(cfg.SeedWait)
	for {
		if s := v.sch.Meta(channels.SeedMetaOffset); s != 0 {
			return s, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no packet-hash seed in %s metadata after %v: is the qos daemon running with this prefix?", v.sch.Path(), cfg.SeedWait)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for the packet-hash seed in %s: %w", v.sch.Path(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Run plays the validator for cfg.Duration against a sidecar already
// joined to the channels under cfg.Channels (see Prepare), then computes
// the oracle and returns the measurements.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("simulator config: %w", err)
	}
	gen, err := newGenerator(&cfg)
	if err != nil {
		return Result{}, err
	}
	v, err := openValidator(cfg.Channels)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = v.close() }()
	seed, err := v.hashSeed(ctx, &cfg)
	if err != nil {
		return Result{}, err
	}
	r := newRecorder(&cfg, seed, gen)
	// Join the output at its current tail: whatever the sidecar sent
	// before this run is not this run's.
	for v.out.Pop(&r.pkt) {
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.produce(ctx, start, gen, v)
	}()
	r.consume(ctx, start, v)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("simulation interrupted: %w", err)
	}
	r.skipped = v.out.Skipped()
	r.wall = time.Since(start)
	oracle, err := newGenerator(&cfg)
	if err != nil {
		return Result{}, err
	}
	r.computeOracle(oracle)
	return r.result(), nil
}

// recorder is the state of one Run. The producer goroutine writes the
// prod* fields and the consumer the rest; result reads both after the
// two have finished.
type recorder struct {
	cfg      *Config
	seed     uint64
	nAgents  int
	nBuckets int
	nSlots   int
	attacker []bool
	owners   map[addrKey]int32

	// producer side
	produced   uint64
	prodIn     []uint64 // bucket × agent
	prodSlot   []uint64 // per wall-clock slot: packets produced in it
	prodLagMax int64

	// consumer side
	pkt          channels.Packet
	dec          decoded
	sg           signer
	sched        *scheduler
	dups         *hashSet
	lat          histogram
	tokens       int64 // sigverify token bucket, in packet·10⁻⁹
	tokensCap    int64
	tokensAt     int64
	out          []uint64 // bucket × agent
	outAgent     []uint64
	included     []uint64 // per agent
	valueOut     []uint64 // per agent
	received     uint64
	outAfter     uint64
	attackOut    uint64 // attackers' packets received, whole run
	attackAfter  uint64
	work         uint64 // packets sigverify processed (checked a signature of)
	workAfter    uint64
	attackWork   uint64 // of which the attackers'
	attackWorkAf uint64
	honestLat    histogram // produce → sigverify of honest transactions that verified
	unattributed uint64
	duplicates   uint64
	sigDropped   uint64
	failed       uint64
	verified     uint64
	foreign      uint64
	nIncluded    uint64
	value        uint64
	valueAfter   uint64
	skipped      uint64
	wall         time.Duration

	// oracle
	capacity    int // sigverify's packets per slot window (0: unlimited)
	oracle      uint64
	oracleAfter uint64
	valueIn     []uint64 // per agent
	offered     []uint64 // per agent: unique valid transactions produced
}

func newRecorder(cfg *Config, seed uint64, g *generator) *recorder {
	nA := len(cfg.Agents)
	nB := int(cfg.Duration/cfg.Bucket) + 1
	nS := int(cfg.Duration/cfg.SlotDuration) + 2
	var total float64
	r := &recorder{cfg: cfg, seed: seed, nAgents: nA, nBuckets: nB, nSlots: nS,
		attacker: make([]bool, nA), owners: g.owners(),
		prodIn: make([]uint64, nB*nA), out: make([]uint64, nB*nA),
		outAgent: make([]uint64, nA), included: make([]uint64, nA), valueOut: make([]uint64, nA),
		valueIn: make([]uint64, nA), offered: make([]uint64, nA), prodSlot: make([]uint64, nS)}
	for i := range cfg.Agents {
		r.attacker[i] = cfg.Agents[i].Attacker
		total += cfg.Agents[i].PPS
	}
	perSlot := int(total * cfg.SlotDuration.Seconds())
	if cfg.SigverifyPPS > 0 {
		perSlot = min(perSlot, int(float64(cfg.SigverifyPPS)*cfg.SlotDuration.Seconds()*2)+int(float64(cfg.SigverifyPPS)*cfg.SigverifyBurst.Seconds()))
		r.tokensCap = int64(cfg.SigverifyPPS) * int64(cfg.SigverifyBurst)
		r.tokens = r.tokensCap
		r.capacity = max(1, int(float64(cfg.SigverifyPPS)*cfg.SlotDuration.Seconds()))
	}
	r.sched = newScheduler(cfg.SlotCUBudget, perSlot+16)
	r.dups = newHashSet(int(total * cfg.Duration.Seconds()))
	return r
}

func (r *recorder) bucket(t int64) int {
	b := int(t / int64(r.cfg.Bucket))
	return min(max(b, 0), r.nBuckets-1)
}

// produce runs the traffic until cfg.Duration: every packet whose virtual
// time has come is encoded and pushed to its agent's channel, and every
// packet due before cfg.Duration is pushed before it returns.
func (r *recorder) produce(ctx context.Context, start time.Time, g *generator, v *validator) {
	dur := int64(r.cfg.Duration)
	done := ctx.Done()
	var pkt channels.Packet
	var lastBeat int64 = -beatEvery
	for {
		select {
		case <-done:
			return
		default:
		}
		// At the end every packet due before cfg.Duration still goes out,
		// however late the producer runs: the story's count does not
		// depend on how much CPU the run got.
		wall := int64(time.Since(start))
		now := wall
		final := now >= dur
		if final {
			now = dur
		}
		var dirty [4]bool
		n := 0
		for ; n < batchMax; n++ {
			t := g.peek()
			if t > now || t >= dur {
				break
			}
			ev := g.next(&pkt)
			v.in[ev.channel].Push(&pkt)
			dirty[ev.channel] = true
			r.produced++
			r.prodSlot[min(int(now/int64(r.cfg.SlotDuration)), r.nSlots-1)]++
			r.prodIn[r.bucket(ev.t)*r.nAgents+int(ev.agent)]++
			r.prodLagMax = max(r.prodLagMax, wall-ev.t)
		}
		for i, d := range dirty {
			if d {
				v.in[i].Sync()
			}
		}
		if now-lastBeat >= beatEvery {
			for _, p := range v.in {
				p.Beat()
			}
			lastBeat = now
		}
		if final {
			if n < batchMax {
				break
			}
			continue
		}
		if n == 0 {
			wait := time.Duration(g.peek() - now)
			time.Sleep(min(max(wait, 20*time.Microsecond), maxSleep))
		}
	}
	for _, p := range v.in {
		p.Sync()
	}
}

// consume plays sigverify and the scheduler until cfg.Duration.
func (r *recorder) consume(ctx context.Context, start time.Time, v *validator) {
	dur := int64(r.cfg.Duration)
	slot := int64(r.cfg.SlotDuration)
	done := ctx.Done()
	slotIdx := 0
	slotEnd := slot
	var lastBeat int64 = -beatEvery
	for {
		select {
		case <-done:
			return
		default:
		}
		now := int64(time.Since(start))
		for now >= slotEnd && slotIdx < r.nSlots-1 {
			r.closeSlot(v, slotIdx)
			slotIdx++
			slotEnd += slot
		}
		if now >= dur {
			r.closeSlot(v, slotIdx)
			break
		}
		n := 0
		for n < batchMax && v.out.Pop(&r.pkt) {
			r.receive(v, now, slotIdx)
			n++
		}
		if n > 0 {
			v.out.Commit() // publish how far sigverify has read
		}
		v.sig.Sync()
		if now-lastBeat >= beatEvery {
			v.out.Beat()
			v.sig.Beat()
			v.sch.Beat()
			v.status.Beat()
			lastBeat = now
		}
		if n == 0 {
			time.Sleep(idleSleep)
		}
	}
}

// receive handles one packet the sidecar sent to sigverify, in r.pkt:
// attribution, latency, duplicate check, sigverify budget, mock sigverify
// (failures go back on sig_to_qos flagged DISCARD), and candidacy for
// the slot. It never allocates (but for the rare growth of the duplicate
// set and of the slot's candidate list).
func (r *recorder) receive(v *validator, now int64, slotIdx int) {
	p := &r.pkt
	r.received++
	data := p.Data()
	parsed := data != nil && decodeTx(data, &r.dec)
	// Attribution: by the memo's agent when the packet parses (several
	// agents may share an address behind a NAT), else by the address.
	agent := int32(-1)
	if parsed && r.dec.hasMemo && int(r.dec.agent) < r.nAgents {
		agent = int32(r.dec.agent)
	} else if a, ok := r.owners[keyOfPacket(p)]; ok {
		agent = a
	}
	attacker := agent >= 0 && r.attacker[agent]
	after := now >= int64(r.cfg.Warmup)
	if agent >= 0 {
		r.out[r.bucket(now)*r.nAgents+int(agent)]++
		r.outAgent[agent]++
	} else {
		r.unattributed++
	}
	if attacker {
		r.attackOut++
	}
	if after {
		r.outAfter++
		if attacker {
			r.attackAfter++
		}
	}
	if parsed && r.dec.hasMemo {
		r.lat.add(now - r.dec.produced)
	}
	h := score.PacketHash(r.seed, p)
	if r.dups.insert(h) {
		r.duplicates++
		return
	}
	if r.tokensCap > 0 {
		r.tokens = min(r.tokensCap, r.tokens+(now-r.tokensAt)*int64(r.cfg.SigverifyPPS))
		r.tokensAt = now
		if r.tokens < int64(time.Second) {
			r.sigDropped++
			return
		}
		r.tokens -= int64(time.Second)
	}
	r.work++
	if attacker {
		r.attackWork++
	}
	if after {
		r.workAfter++
		if attacker {
			r.attackWorkAf++
		}
	}
	if data == nil || p.Flags()&channels.FlagDiscard != 0 || !r.sg.verify(data) {
		r.failed++
		p.SetFlags(p.Flags() | channels.FlagDiscard)
		v.sig.Push(p)
		return
	}
	r.verified++
	if !parsed || agent < 0 {
		r.foreign++ // correctly signed but not the simulator's: no fee to go by
		return
	}
	if !attacker && r.dec.hasMemo {
		r.honestLat.add(now - r.dec.produced)
	}
	r.sched.add(h, r.dec.fee(), r.dec.cus(), agent, r.dec.unpaid, data[1:65])
}

// closeSlot schedules the slot's candidates, reports every one on
// sch_to_qos (execution time 0 when not included) and publishes the
// included first signatures on tx_status_cache.
func (r *recorder) closeSlot(v *validator, slotIdx int) {
	s := r.sched
	s.schedule()
	afterWarmup := int64(slotIdx)*int64(r.cfg.SlotDuration) >= int64(r.cfg.Warmup)
	var meta channels.RemainingMeta
	var sig channels.Signature
	for i := range s.cands {
		c := &s.cands[i]
		var exec uint64
		if c.included {
			exec = r.cfg.ExecBaseNanos + r.cfg.ExecNanosPerCU*uint64(c.cus)
			r.nIncluded++
			r.value += c.fee
			r.included[c.agent]++
			r.valueOut[c.agent] += c.fee
			if afterWarmup {
				r.valueAfter += c.fee
			}
			sig = c.sig
			v.status.Push(&sig)
		}
		meta.Set(c.hash, exec)
		v.sch.Push(&meta)
	}
	v.sch.Sync()
	v.status.Sync()
	s.reset()
}

// computeOracle replays the first r.produced packets of the traffic
// (without encoding them) and computes, per slot window, the best value
// sigverify and the scheduler could have captured (bestChoice) at
// sigverify's full capacity: every policy is graded against the same
// oracle, however few packets it sent.
func (r *recorder) computeOracle(g *generator) {
	slot := int64(r.cfg.SlotDuration)
	warm := int64(r.cfg.Warmup)
	var items []item
	w := 0
	flush := func() {
		k := r.capacity
		if k == 0 {
			k = len(items)
		}
		best := bestChoice(items, k, r.cfg.SlotCUBudget)
		r.oracle += best
		if int64(w)*slot >= warm {
			r.oracleAfter += best
		}
		items = items[:0]
	}
	// Each packet belongs to the wall-clock slot in which the producer
	// pushed it, as sigverify's budget does. On schedule that
	// is the slot of its virtual time; a producer that cannot keep up
	// with the configured rate pushes packets later than their virtual
	// time, and grouping by virtual time would crowd the whole run's
	// traffic into its first slots.
	left := r.prodSlot[0]
	for i := uint64(0); i < r.produced; i++ {
		ev := g.skip()
		for left == 0 && w < len(r.prodSlot)-1 {
			flush()
			w++
			left = r.prodSlot[w]
		}
		left--
		if ev.unique() {
			items = append(items, item{fee: ev.fee, cus: ev.cus})
			r.valueIn[ev.agent] += ev.fee
			r.offered[ev.agent]++
		}
	}
	flush()
}
