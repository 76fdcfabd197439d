package standin

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
	"github.com/solqos/qos/sim"
)

// Truth is the ground truth about one transaction the stand-in fed on
// tpu_to_pack: what it is worth and whether it could be included, for
// tests and for measuring a scheduler against an oracle.
type Truth struct {
	Agent  int32  // index in the traffic's agents; -1 for a vote
	Seq    uint64 // the simulator's sequence number
	Fee    uint64 // lamports it pays if included
	CUs    uint32 // requested compute units
	Funded bool   // its fee payer could pay the fee when it was fed
	Stale  bool   // it names a blockhash the bank no longer knows: it can never land
	Flags  bindings.TpuFlags
	FedAt  time.Duration // since the stand-in's start (the slot clock's origin)
	// Cost is the block cost the bank charges it if included (signatures,
	// write locks, instruction data, requested compute units, loaded
	// accounts data: the estimate the bank charges); 0 when it does not
	// load (a translation failure).
	Cost uint64
	// Writable holds the first 8 bytes of its first NWritable writable
	// accounts (at most 4), for a bound on the per-account cost limit.
	Writable  [4]uint64
	NWritable uint8
}

// truthTable maps first signatures to Truth, up to a bound.
type truthTable struct {
	mu      sync.Mutex
	m       map[[64]byte]Truth
	limit   int
	dropped uint64
}

func newTruthTable(limit int) *truthTable {
	return &truthTable{m: make(map[[64]byte]Truth, min(limit, 1<<16)), limit: limit}
}

// fedAt reports when sig was first fed, if it was.
func (t *truthTable) fedAt(sig *[64]byte) (time.Duration, bool) {
	t.mu.Lock()
	tr, ok := t.m[*sig]
	t.mu.Unlock()
	return tr.FedAt, ok
}

// put records tr for sig unless sig has a truth already (a copy fed
// again after the dedup window keeps its first one).
func (t *truthTable) put(sig *[64]byte, tr Truth) {
	t.mu.Lock()
	if _, ok := t.m[*sig]; ok {
		// keep the first
	} else if len(t.m) < t.limit {
		t.m[*sig] = tr
	} else {
		t.dropped++
	}
	t.mu.Unlock()
}

// FeedConfig says what the stand-in feeds on tpu_to_pack.
type FeedConfig struct {
	// Traffic is the simulator's configuration (agents, rates, seed);
	// its channel, slot and sigverify fields are not used.
	Traffic sim.Config
	// VotePPS is the rate of simple vote transactions from staked
	// validators (0 = none).
	VotePPS float64
	// PayerBalance funds every fee payer of the traffic (lamports);
	// UnfundedShare of the payers (by a fixed rule) get an empty account
	// instead, so their transactions fail with INSUFFICIENT_FUNDS_FOR_FEE.
	PayerBalance  uint64
	UnfundedShare float64
	// StaleShare of the traffic's packets name a blockhash older than the
	// bank's recent ones (a spammer replaying old signed transactions or
	// holding a stale hash): the bank answers BLOCKHASH_NOT_FOUND.
	StaleShare float64
	// ReplayShare of the published traffic transactions are sent again
	// once DedupWindow has passed since they were fed: Agave's sigverify
	// deduper forgets signatures periodically (Deduper::maybe_reset with
	// MAX_DEDUPER_AGE = 2 s in core/src/sigverify_stage.rs, as read in
	// copies from the code index, release not pinned; not tested), so a
	// re-sent copy reaches pack and, if the original was executed, the bank
	// answers ALREADY_PROCESSED. DedupWindow 0 dedups a signature forever
	// (no replay reaches pack then).
	ReplayShare float64
	DedupWindow time.Duration
	// AgentShares overrides UnfundedShare, StaleShare and ReplayShare for
	// the traffic's agents it names: a spammer whose fee payers are empty
	// and whose transactions are stale or replayed, next to honest
	// senders that rarely are.
	AgentShares map[string]Shares
	// Forwarders are the staked nodes that forward the traffic of the
	// fwd channel: a forwarded packet arrives from one of them (chosen
	// by its sender's address, so a sender keeps its forwarder), as in
	// Agave a forwarded packet's source address is the forwarder's, not
	// the original sender's. Empty: the sender's own address.
	Forwarders []netip.Addr
	// TruthLimit bounds the ground-truth table (default 1<<21).
	TruthLimit int
}

// Shares is what share of one agent's traffic its sender spoils: fee
// payers with an empty account, packets naming a stale blockhash,
// published transactions re-sent after the dedup window.
type Shares struct {
	Unfunded float64 `json:"unfunded"`
	Stale    float64 `json:"stale"`
	Replay   float64 `json:"replay"`
}

// Validate reports the first share out of [0, 1] or agent name that the
// traffic does not have.
func (c *FeedConfig) Validate() error {
	check := func(what string, s Shares) error {
		for _, v := range [...]struct {
			name string
			x    float64
		}{{"unfunded", s.Unfunded}, {"stale", s.Stale}, {"replay", s.Replay}} {
			if !(v.x >= 0 && v.x <= 1) {
				return fmt.Errorf("feed: %s %s share %v: must be in [0, 1]", what, v.name, v.x)
			}
		}
		return nil
	}
	if err := check("default", Shares{c.UnfundedShare, c.StaleShare, c.ReplayShare}); err != nil {
		return err
	}
	for name, s := range c.AgentShares {
		found := false
		for i := range c.Traffic.Agents {
			found = found || c.Traffic.Agents[i].Name == name
		}
		if !found {
			return fmt.Errorf("feed: shares for agent %q: the traffic has no such agent", name)
		}
		if err := check("agent "+name, s); err != nil {
			return err
		}
	}
	for _, a := range c.Forwarders {
		if !a.IsValid() {
			return fmt.Errorf("feed: forwarder address %v is not valid", a)
		}
	}
	return nil
}

// shares returns agent a's shares.
func (c *FeedConfig) shares(a int) Shares {
	if a >= 0 && a < len(c.Traffic.Agents) {
		if s, ok := c.AgentShares[c.Traffic.Agents[a].Name]; ok {
			return s
		}
	}
	return Shares{c.UnfundedShare, c.StaleShare, c.ReplayShare}
}

// Vote111111111111111111111111111111111111111.
var voteProgram = Key{0x07, 0x61, 0x48, 0x1d, 0x35, 0x74, 0x74, 0xbb, 0x7c, 0x4d, 0x76, 0x24, 0xeb, 0xd3, 0xbd, 0xb3,
	0xd8, 0x35, 0x5e, 0x73, 0xd1, 0x10, 0x43, 0xfc, 0x0d, 0xa3, 0x53, 0x80, 0x00, 0x00, 0x00, 0x00}

// staleHash is the blockhash stale packets name: one the bank's queue of
// recent blockhashes never holds (as one that aged out of it).
var staleHash = Key(sha256.Sum256([]byte("qos-standin stale blockhash")))

// replayRing bounds the transactions held for re-sending.
const replayRing = 1024

// replay is a published transaction held to be sent again.
type replay struct {
	due  time.Duration
	p    sim.Packet
	src  [16]byte
	n    int
	data [channels.PacketDataSize]byte
}

// voters is how many staked validators send votes.
const voters = 16

// unfunded reports whether signer s of agent a gets an empty account.
func unfunded(share float64, a, s int) bool {
	if share <= 0 {
		return false
	}
	h := sha256.Sum256(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(a)), uint64(s)))
	return float64(binary.LittleEndian.Uint32(h[:]))/(1<<32) < share
}

// lookupAddrs is the fixed content of a traffic lookup table.
func lookupAddrs(table Key) []Key {
	addrs := make([]Key, 8)
	for j := range addrs {
		addrs[j] = table
		addrs[j][31] ^= byte(j + 1)
		addrs[j][30] ^= 0x5a
	}
	return addrs
}

// voterKey returns the authority (payer) and vote account of voter i.
func voterKey(i int) (auth, acct Key) {
	auth = sha256.Sum256([]byte(fmt.Sprintf("qos-standin voter %d", i)))
	acct = sha256.Sum256([]byte(fmt.Sprintf("qos-standin vote account %d", i)))
	return auth, acct
}

// fundBank gives the traffic's payers, its lookup tables and the voters
// their accounts. REQUIRES: before any batch runs.
func fundBank(b *Bank, tr *sim.Traffic, cfg *FeedConfig) {
	for a := 0; a < tr.Agents(); a++ {
		for s := 0; s < tr.Signers(a); s++ {
			k, _ := tr.Payer(a, s)
			if unfunded(cfg.shares(a).Unfunded, a, s) {
				b.Fund(k, 0)
			} else {
				b.Fund(k, cfg.PayerBalance)
			}
		}
		if lut, ok := tr.LookupTable(a); ok {
			b.AddLookupTable(lut, lookupAddrs(lut), ^uint64(0))
		}
	}
	for i := 0; i < voters; i++ {
		auth, _ := voterKey(i)
		b.Fund(auth, 1_000_000_000_000)
	}
}

// early is a payload that came back before its message was seen read.
type early struct{ off, seq uint64 }

// judgeEarly fails the payloads that came back and whose message the
// client had still not read by read index r.
func (f *feeder) judgeEarly(r uint64) {
	for _, e := range f.early {
		if e.seq > r {
			f.audit.Unread(e.off, e.seq)
		}
	}
	f.early = f.early[:0]
}

// feedBatchMax bounds the messages published per commit (Agave commits
// once per batch of received packets).
const feedBatchMax = 256

// feeder is Agave's tpu_to_pack thread (solTpu2Pack) fed by the traffic
// simulator instead of the network: each due packet passes the mock
// sigverify and a dedup by signature, is copied into a block of the
// feeder's allocator slot (0) and published with its source address and
// flags. An exhausted allocator or a full queue drops the packet and ends
// the batch, as Agave does (tpu_to_pack.rs handle_packet_batches).
type feeder struct {
	tr    *sim.Traffic
	sv    sim.Sigverify
	alloc blockAllocator
	mem   []byte
	out   tpuQueue
	cap   int // tpu_to_pack capacity
	bank  *Bank
	audit *Audit
	stats *counters
	truth *truthTable
	visit func(off uint64)
	start time.Time

	pkt     channels.Packet
	pending sim.Packet
	has     bool
	stale   bool // pending names staleHash
	hash    Key
	fc      Stats    // this round's counts, added to stats at its end
	ring    []uint64 // offsets of published payloads, by message index
	nmsg    uint64

	readIdx uint64  // the client's tpu_to_pack read index at the last sync
	early   []early // payloads freed before their message was seen read

	// Per agent: a valid packet is made stale when its draw is below
	// staleCut, a published one held for replay when below replayCut.
	staleCut  []uint64
	replayCut []uint64
	anyReplay bool
	window    time.Duration
	fwd       []netip.Addr // Forwarders
	ld        txn          // the bank's view of a fed transaction (its cost)
	draws     uint64       // splitmix64 state for those draws
	replays   []replay     // ring of replayRing, oldest at rHead
	rHead     int
	rLen      int

	votePeriod time.Duration
	nextVote   time.Duration
	votes      uint64
	vote       []byte
	voterAuth  [voters]Key
	voterAcct  [voters]Key
}

// tpuQueue is tpu_to_pack's producing end.
type tpuQueue interface {
	outQueue
	Len() int
}

func (f *feeder) lenOut() int { return f.out.Len() }

func newFeeder(tr *sim.Traffic, cfg *FeedConfig, alloc blockAllocator, mem []byte, out tpuQueue, capacity int,
	bank *Bank, audit *Audit, stats *counters, truth *truthTable, start time.Time) *feeder {
	f := &feeder{tr: tr, alloc: alloc, mem: mem, out: out, cap: capacity, bank: bank, audit: audit, stats: stats,
		truth: truth, start: start, ring: make([]uint64, capacity)}
	f.visit = func(off uint64) {
		// A payload may come back before the client publishes its read
		// index (it frees, then finalizes): judge it at the end.
		if seq := audit.Returned(0, off); seq > f.readIdx {
			f.early = append(f.early, early{off, seq})
		}
	}
	f.staleCut = make([]uint64, tr.Agents())
	f.replayCut = make([]uint64, tr.Agents())
	f.window = cfg.DedupWindow
	for a := range f.staleCut {
		sh := cfg.shares(a)
		f.staleCut[a] = shareCut(sh.Stale)
		if cfg.DedupWindow > 0 {
			f.replayCut[a] = shareCut(sh.Replay)
			f.anyReplay = f.anyReplay || f.replayCut[a] > 0
		}
	}
	if f.anyReplay {
		f.replays = make([]replay, replayRing)
	}
	f.fwd = cfg.Forwarders
	f.draws = uint64(cfg.Traffic.Seed) ^ 0x9e3779b97f4a7c15
	for i := range f.voterAuth {
		f.voterAuth[i], f.voterAcct[i] = voterKey(i)
	}
	if cfg.VotePPS > 0 {
		f.votePeriod = time.Duration(float64(time.Second) / cfg.VotePPS)
		f.nextVote = f.votePeriod
	}
	return f
}

// shareCut turns a share in [0, 1] into a threshold of a uniform uint64.
func shareCut(share float64) uint64 {
	switch {
	case !(share > 0):
		return 0
	case share >= 1:
		return ^uint64(0)
	}
	return uint64(share * (1 << 63) * 2)
}

// draw returns the next uniform uint64 (splitmix64).
func (f *feeder) draw() uint64 {
	f.draws += 0x9e3779b97f4a7c15
	z := f.draws
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// run feeds until stop is closed.
func (f *feeder) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			f.alloc.CleanRemoteFrees(f.visit)
			return
		default:
		}
		if n := f.round(); n == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// round publishes the packets due now (at most feedBatchMax) and returns
// how many it handled.
func (f *feeder) round() int {
	f.out.Sync()
	f.readIdx = f.nmsg - uint64(f.lenOut())
	f.alloc.CleanRemoteFrees(f.visit)
	if len(f.early) > 256 {
		f.out.Sync()
		f.judgeEarly(f.nmsg - uint64(f.lenOut()))
	}
	if h := f.bank.LatestBlockhash(); h != f.hash {
		f.hash = h
		f.tr.SetBlockhash(h)
	}
	now := time.Since(f.start)
	handled, published := 0, 0
	// After a failed allocation or a full queue the rest of the batch is
	// dropped (tpu_to_pack.rs: break 'batch_loop).
	drop := dropNone
	for handled < feedBatchMax {
		var d dropKind
		if f.votePeriod > 0 && f.nextVote <= now {
			f.nextVote += f.votePeriod
			handled++
			d = f.publish(f.makeVote(), true, 0, [16]byte{}, now, drop, false)
		} else if f.rLen > 0 && f.replays[f.rHead].due <= now {
			r := &f.replays[f.rHead]
			f.rHead = (f.rHead + 1) % len(f.replays)
			f.rLen--
			handled++
			d = f.publish(r.data[:r.n], false, r.p.Channel, r.src, now, drop, true)
		} else {
			if !f.has {
				f.pending = f.tr.NextPacket(&f.pkt)
				f.stale = f.makeStale()
				f.has = true
			}
			if time.Duration(f.pending.At) > now {
				break
			}
			f.has = false
			handled++
			var src [16]byte
			if a, ok := f.pkt.Addr(); ok {
				src = f.source(a, f.pending.Channel).As16() // IPv4 as ::ffff:a.b.c.d, as tpu_to_pack.rs map_src_addr
			}
			d = f.publish(f.pkt.Data(), false, f.pending.Channel, src, now, drop, false)
			if d == dropNone && !f.stale && f.replayCut[f.pending.Agent] > 0 && f.rLen < len(f.replays) &&
				f.draw() < f.replayCut[f.pending.Agent] {
				r := &f.replays[(f.rHead+f.rLen)%len(f.replays)]
				f.rLen++
				data := f.pkt.Data()
				r.due, r.p, r.src, r.n = now+f.window, f.pending, src, copy(r.data[:], data)
			}
		}
		switch {
		case d == dropNone:
			published++
		case d != dropFiltered:
			drop = d
		}
	}
	if published > 0 {
		f.out.Commit()
	}
	if handled > 0 {
		f.stats.add(func(s *Stats) {
			s.Generated += f.fc.Generated
			s.Unparsable += f.fc.Unparsable
			s.SigverifyFailed += f.fc.SigverifyFailed
			s.Deduplicated += f.fc.Deduplicated
			s.DroppedAlloc += f.fc.DroppedAlloc
			s.DroppedQueue += f.fc.DroppedQueue
			s.Votes += f.fc.Votes
			s.Fed += f.fc.Fed
			s.Stale += f.fc.Stale
			s.Replayed += f.fc.Replayed
		})
		f.fc = Stats{}
	}
	return handled
}

// makeStale draws whether the pending packet names a stale blockhash
// (its agent's stale share) and, if so, writes staleHash into it and signs
// it again. Only a packet that verifies and parses is made stale: the
// simulator's bad signatures and garbage stay what they are.
func (f *feeder) makeStale() bool {
	a := f.pending.Agent
	if a < 0 || a >= len(f.staleCut) || f.staleCut[a] == 0 || f.draw() >= f.staleCut[a] {
		return false
	}
	data := f.pkt.Data()
	if f.pending.Kind == sim.PacketUnparsable || !f.sv.Verify(data) || f.ld.view.Parse(data) != score.OK {
		return false
	}
	copy(f.ld.view.RecentBlockhash(data), staleHash[:]) // a subslice of data
	return f.sv.Sign(data)
}

// source is the address a packet from a arrives from: its forwarder's for
// the fwd channel when forwarders are configured (chosen by a hash of a,
// so a sender keeps its forwarder), else a.
func (f *feeder) source(a netip.Addr, channel int) netip.Addr {
	if channel != 1 || len(f.fwd) == 0 {
		return a
	}
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[8:]) ^ binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9 // splitmix64's finaliser
	h = (h ^ h>>27) * 0x94d049bb133111eb
	h ^= h >> 31
	return f.fwd[h%uint64(len(f.fwd))]
}

// makeVote builds the next simple vote transaction: legacy, the voter's
// authority paying and signing, its vote account writable, one
// instruction of the vote program.
func (f *feeder) makeVote() []byte {
	i := int(f.votes % voters)
	f.votes++
	auth, acct := &f.voterAuth[i], &f.voterAcct[i]
	b := f.vote[:0]
	b = append(b, 1)
	b = append(b, make([]byte, 64)...)
	b = append(b, 1, 0, 1, 3)
	b = append(b, auth[:]...)
	b = append(b, acct[:]...)
	b = append(b, voteProgram[:]...)
	b = append(b, f.hash[:]...)
	b = append(b, 1, 2, 2, 1, 0, 16)
	b = binary.LittleEndian.AppendUint32(b, 12) // a TowerSync-like tag
	b = binary.LittleEndian.AppendUint64(b, f.votes)
	b = binary.LittleEndian.AppendUint32(b, uint32(i))
	f.sv.Sign(b)
	f.vote = b
	return b
}

// dropKind is what became of a packet that was not published.
type dropKind uint8

const (
	dropNone     dropKind = iota // published
	dropFiltered                 // sigverify, parse or dedup
	dropAlloc                    // allocator exhausted
	dropQueue                    // tpu_to_pack full
)

// publish runs one packet through sigverify and dedup and onto
// tpu_to_pack. With dropping set (an earlier packet of the batch failed)
// a packet that passes the filters is dropped for the same reason.
//
// A replay (a copy of a transaction fed at least the dedup window ago)
// passes dedup and keeps its first ground truth.
func (f *feeder) publish(data []byte, vote bool, channel int, src [16]byte, now time.Duration, dropping dropKind, replay bool) dropKind {
	if !vote {
		if !replay {
			f.fc.Generated++
		}
		if !replay && f.pending.Kind == sim.PacketUnparsable {
			f.fc.Unparsable++
			return dropFiltered
		}
		if !f.sv.Verify(data) {
			f.fc.SigverifyFailed++
			return dropFiltered
		}
	}
	var sig [64]byte
	copy(sig[:], data[1:65])
	if at, ok := f.truth.fedAt(&sig); ok && (f.window == 0 || now-at < f.window) {
		f.fc.Deduplicated++
		return dropFiltered
	}
	switch dropping {
	case dropAlloc:
		f.fc.DroppedAlloc++
		return dropAlloc
	case dropQueue:
		f.fc.DroppedQueue++
		return dropQueue
	}
	var flags bindings.TpuFlags
	switch {
	case vote:
		flags = bindings.TpuIsSimpleVote | bindings.TpuFromStakedNode
	case channel == 1: // fwd: forwarded by a staked node
		flags = bindings.TpuForwarded | bindings.TpuFromStakedNode
	case channel >= 2: // re1, re2: a co-hosted relayer, staked
		flags = bindings.TpuFromStakedNode
	}
	off, ok := f.alloc.Allocate(len(data))
	if !ok || off+uint64(len(data)) > uint64(len(f.mem)) {
		if ok {
			_ = f.alloc.Free(off)
		}
		f.fc.DroppedAlloc++
		return dropAlloc
	}
	slot, ok := f.out.Reserve()
	if !ok {
		_ = f.alloc.Free(off)
		f.fc.DroppedQueue++
		return dropQueue
	}
	copy(f.mem[off:], data)
	if vote {
		src = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 99, 14: 0, 15: byte(1 + f.votes%voters)}
	}
	m := bindings.TpuToPack{Transaction: bindings.SharableTransactionRegion{Offset: off, Length: uint32(len(data))},
		Flags: flags, SrcAddr: src}
	_ = m.Encode(slot) // a reserved slot is always TpuToPackSize bytes
	f.ring[f.nmsg%uint64(len(f.ring))] = off
	f.nmsg++
	f.audit.GivePayload(off, f.nmsg)
	if replay {
		f.fc.Replayed++
		f.fc.Fed++
		return dropNone
	}
	tr := Truth{Agent: -1, Flags: flags, FedAt: now}
	if vote {
		tr.Funded = true
		f.fc.Votes++
		f.fc.Fed++
	} else {
		p := &f.pending
		tr.Agent, tr.Seq, tr.Fee, tr.CUs = int32(p.Agent), p.Seq, p.Fee, p.CUs
		f.ld.load(data, f.bank.tables, f.bank.fp)
		if f.ld.reason == ReasonNone {
			tr.Cost = f.ld.cost
			for i := 0; i < f.ld.nacc && tr.NWritable < uint8(len(tr.Writable)); i++ {
				if f.ld.writable[i] {
					tr.Writable[tr.NWritable] = binary.LittleEndian.Uint64(f.ld.acc[i][:8])
					tr.NWritable++
				}
			}
		}
		// The payer the transaction names (a fresh payer of a sybil is
		// not the agent's signer p.Signer).
		bal, _ := f.bank.Balance(f.ld.payer)
		tr.Funded = f.ld.parsed && bal >= p.Fee
		if f.stale {
			tr.Stale = true
			f.fc.Stale++
		}
		f.fc.Fed++
	}
	f.truth.put(&sig, tr)
	return dropNone
}

// undelivered returns the offsets of the last n published payloads (the
// ones still unread in tpu_to_pack when n is the queue's length).
func (f *feeder) undelivered(n int) []uint64 {
	n = min(n, len(f.ring), int(f.nmsg))
	out := make([]uint64, 0, n)
	for i := f.nmsg - uint64(n); i < f.nmsg; i++ {
		out = append(out, f.ring[i%uint64(len(f.ring))])
	}
	return out
}
