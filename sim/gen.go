package sim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/solqos/qos/channels"
)

// kind is what a packet is meant to be.
type kind uint8

const (
	kindValid kind = iota
	kindBadSignature
	kindDuplicate
	kindUnparsable
	kindImpersonate
	kindUnpaid
)

func kindOf(s string) kind {
	switch s {
	case KindImpersonate:
		return kindImpersonate
	case KindUnpaid:
		return kindUnpaid
	case KindBadSignature:
		return kindBadSignature
	case KindDuplicate:
		return kindDuplicate
	case KindUnparsable:
		return kindUnparsable
	}
	return kindValid
}

// recentN is how many recent originals an agent can duplicate.
const recentN = 64

// origin is everything needed to encode one original packet again,
// byte for byte (a duplicate re-encodes its origin).
type origin struct {
	t      int64 // virtual produce time, ns since the run's start
	seq    uint64
	price  uint64
	cu     uint32
	ip     int32
	signer int32 // of the agent, or of the victim when impersonating
	victim int32 // impersonate: whose fee payer
	kind   kind
	v0     bool
}

// mixEntry is a MixConfig ready for drawing.
type mixEntry struct {
	kind   kind
	cum    float64 // cumulative weight up to and including this entry
	median float64
	sigma  float64
	cuMin  uint32
	cuSpan int   // cuMax - cuMin + 1
	victim int32 // impersonate: the agent whose fee payers it names
}

// tplInfo is one transaction template in the generator's slab.
type tplInfo struct {
	off    int
	l      layout
	secret uint64
}

// agentState is one agent of a generator.
type agentState struct {
	id       int
	channel  int
	rng      *rand.PCG
	zrng     *rand.Rand // over rng, for the ziggurat draws
	next     float64    // virtual time of the next packet, ns (never: see stopped)
	stop     float64    // no packet at or after this virtual time, ns
	mean     float64    // mean inter-arrival, ns
	fresh    bool       // a new fee payer for every transaction
	v0Share  float64
	ips      []netip.Addr
	port     uint16
	signers  int
	tpl      int // index of the agent's first template: tpl + 2·signer + v0
	mix      []mixEntry
	total    float64 // sum of weights
	fallback int     // first non-duplicate entry: what a duplicate without an origin becomes
	recent   [recentN]origin
	nrecent  int
	rpos     int
}

// event describes one packet the generator made.
type event struct {
	t       int64 // when it is due, ns since the run's start
	seq     uint64
	fee     uint64 // fee the transaction claims (agave's computation)
	cus     uint32
	agent   int32
	channel int32 // index into channels.Table
	kind    kind  // of the origin; dup says whether this is a resend
	dup     bool
}

// unique reports whether the event is a new, correctly signed
// transaction: what the oracle may choose.
func (e *event) unique() bool { return e.kind == kindValid && !e.dup }

// generator makes the traffic of a Config: a merge, by virtual time, of
// each agent's Poisson stream. It is a pure function of the Config: two
// generators of the same Config produce the same events and bytes.
type generator struct {
	agents []agentState
	tpls   []tplInfo
	slab   []byte
	seq    uint64
	sg     signer
}

// newGenerator builds the agents' address lists, keys and transaction
// templates. REQUIRES: cfg.Validate() == nil.
func newGenerator(cfg *Config) (*generator, error) {
	g := &generator{agents: make([]agentState, len(cfg.Agents))}
	seed := uint64(cfg.Seed)
	var blockhash [32]byte
	keyRNG := rand.NewPCG(seed, 0x626c6f636b68) // "blockh"
	fill32(keyRNG, &blockhash)
	nt := 0
	for i := range cfg.Agents {
		nt += 2 * cfg.Agents[i].Signers
	}
	g.tpls = make([]tplInfo, 0, nt)
	g.slab = make([]byte, 0, nt*300)
	for i := range cfg.Agents {
		ac := &cfg.Agents[i]
		a := &g.agents[i]
		ips, err := ac.addrs()
		if err != nil {
			return nil, fmt.Errorf("agent %q: %w", ac.Name, err)
		}
		a.id = i
		a.channel = channelIndex(ac.Channel)
		a.rng = rand.NewPCG(seed, uint64(i)*golden+1)
		a.zrng = rand.New(a.rng)
		a.mean = 1e9 / ac.PPS
		a.v0Share = ac.V0Share
		a.fresh = ac.FreshSigners
		a.stop = stopped
		if ac.Stop > 0 {
			a.stop = float64(ac.Stop)
		}
		a.ips = ips
		a.port = uint16(8000 + (i*97)%50000)
		a.signers = ac.Signers
		a.tpl = len(g.tpls)
		a.fallback = -1
		for j, m := range ac.Mix {
			a.total += m.Weight
			e := mixEntry{kind: kindOf(m.Kind), cum: a.total, median: m.PriceMedian, sigma: m.PriceSigma, cuMin: m.CUMin, cuSpan: int(m.CUMax-m.CUMin) + 1, victim: -1}
			for v := range cfg.Agents {
				if e.kind == kindImpersonate && cfg.Agents[v].Name == m.Victim {
					e.victim = int32(v)
				}
			}
			a.mix = append(a.mix, e)
			if e.kind != kindDuplicate && a.fallback < 0 {
				a.fallback = j
			}
		}
		if a.fallback < 0 {
			return nil, fmt.Errorf("agent %q: mix has no original to duplicate", ac.Name)
		}
		// First arrival: one inter-arrival draw after the start, like the
		// rest.
		a.next = float64(ac.Start) + a.mean*expDraw(a.zrng)
		if a.next >= a.stop {
			a.next = stopped
		}

		keys := rand.NewPCG(seed, 0x6b657973_00000000|uint64(i)) // "keys"
		var lut [32]byte
		fill32(keys, &lut)
		for s := 0; s < ac.Signers; s++ {
			var payer [32]byte
			fill32(keys, &payer)
			secret := secretOf(payer[:])
			for _, v0 := range [2]bool{false, true} {
				off := len(g.slab)
				var l layout
				g.slab, l = appendTx(g.slab, &payer, &blockhash, &lut, v0)
				g.tpls = append(g.tpls, tplInfo{off: off, l: l, secret: secret})
			}
		}
	}
	return g, nil
}

func fill32(r *rand.PCG, k *[32]byte) {
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(k[8*i:], r.Uint64())
	}
}

// stopped is the virtual time of an agent that sends no more: far beyond
// any run (maxRunDuration), and exactly representable as an int64.
const stopped = float64(1 << 62)

// peek returns the virtual time of the next packet, ns since the start.
func (g *generator) peek() int64 {
	return int64(g.agents[g.pick()].next)
}

// pick returns the agent whose next packet is due first (lowest index on
// a tie).
func (g *generator) pick() int {
	best := 0
	for i := 1; i < len(g.agents); i++ {
		if g.agents[i].next < g.agents[best].next {
			best = i
		}
	}
	return best
}

// draw advances the traffic by one packet and returns its agent, its
// origin and whether it is a duplicate.
func (g *generator) draw() (a *agentState, o origin, t int64, dup bool) {
	a = &g.agents[g.pick()]
	r := a.rng
	t = int64(a.next)
	a.next += a.mean * expDraw(a.zrng)
	if a.next >= a.stop {
		a.next = stopped
	}
	u := uniform(r) * a.total
	mi := len(a.mix) - 1
	for j := range a.mix {
		if u < a.mix[j].cum {
			mi = j
			break
		}
	}
	m := &a.mix[mi]
	if m.kind == kindDuplicate {
		if a.nrecent > 0 {
			return a, a.recent[intN(r, a.nrecent)], t, true
		}
		m = &a.mix[a.fallback]
	}
	o = origin{t: t, seq: g.seq, kind: m.kind, victim: -1}
	g.seq++
	o.ip = int32(intN(r, len(a.ips)))
	if m.kind == kindImpersonate {
		o.victim = m.victim
		o.signer = int32(intN(r, g.agents[m.victim].signers))
	} else {
		o.signer = int32(intN(r, a.signers))
	}
	o.v0 = uniform(r) < a.v0Share
	o.price = logNormal(a.zrng, m.median, m.sigma)
	o.cu = m.cuMin + uint32(intN(r, m.cuSpan))
	a.recent[a.rpos] = o
	a.rpos = (a.rpos + 1) % recentN
	if a.nrecent < recentN {
		a.nrecent++
	}
	return a, o, t, false
}

// skip advances the traffic by one packet without encoding it (the
// oracle's pass) and returns its event.
func (g *generator) skip() event {
	a, o, t, dup := g.draw()
	return makeEvent(a, &o, t, dup)
}

// next encodes the next packet into p and returns its event. It
// overwrites the data in use, size, address, port and flags of p; bytes
// past the data in use keep whatever they held. It never allocates.
func (g *generator) next(p *channels.Packet) event {
	a, o, t, dup := g.draw()
	g.encode(a, &o, p)
	return makeEvent(a, &o, t, dup)
}

func makeEvent(a *agentState, o *origin, t int64, dup bool) event {
	return event{t: t, seq: o.seq, fee: txFee(1, o.cu, o.price), cus: min(o.cu, maxComputeUnitLimit),
		agent: int32(a.id), channel: int32(a.channel), kind: o.kind, dup: dup}
}

// encode writes the packet of origin o of agent a into p.
func (g *generator) encode(a *agentState, o *origin, p *channels.Packet) {
	v0 := 0
	if o.v0 {
		v0 = 1
	}
	owner := a
	if o.victim >= 0 {
		owner = &g.agents[o.victim]
	}
	ti := &g.tpls[owner.tpl+2*int(o.signer)+v0]
	data := p[:channels.PacketDataSize]
	n := copy(data, g.slab[ti.off:ti.off+ti.l.n])
	binary.LittleEndian.PutUint32(data[ti.l.limit:], o.cu)
	binary.LittleEndian.PutUint64(data[ti.l.price:], o.price)
	var flags uint16
	if o.kind == kindUnpaid {
		flags |= memoUnpaid
	}
	putMemo(data, ti.l.memo, uint16(a.id), flags, o.seq, o.t)
	secret := ti.secret
	if a.fresh && o.victim < 0 {
		// A fee payer never used before: derived from the packet's
		// sequence number, unique in the run.
		payer := data[ti.l.payer : ti.l.payer+32]
		for i := 0; i < 4; i++ {
			binary.LittleEndian.PutUint64(payer[8*i:], mix64(o.seq*4+uint64(i)+freshLabel))
		}
		secret = secretOf(payer)
	}
	if o.kind == kindBadSignature || o.kind == kindImpersonate {
		secret ^= badSecret
	}
	g.sg.sign(secret, data[ti.l.msg:n], data[1:65])
	size := n
	if o.kind == kindUnparsable {
		switch o.seq % 3 {
		case 0:
			data[0] = 0 // no signatures
		case 1:
			data[n] = 0 // one trailing byte
			size = n + 1
		default:
			size = n - 7 // truncated
		}
	}
	p.SetSize(uint64(size))
	p.SetAddr(a.ips[o.ip])
	p.SetPort(a.port + uint16(o.ip%1000))
	p.SetFlags(0)
}

// addrKey is a packet's address as a pointer-free map key: tag and 16
// bytes (IPv4 in the first four).
type addrKey [17]byte

func keyOfAddr(ip netip.Addr) addrKey {
	var k addrKey
	if ip.Is4() {
		k[0] = channels.AddrTagIPv4
		b := ip.As4()
		copy(k[1:], b[:])
		return k
	}
	k[0] = channels.AddrTagIPv6
	b := ip.As16()
	copy(k[1:], b[:])
	return k
}

func keyOfPacket(p *channels.Packet) addrKey {
	var k addrKey
	k[0] = p.AddrTag()
	copy(k[1:], p.AddrBytes())
	return k
}

// owners maps every source address of the generator to its agent.
func (g *generator) owners() map[addrKey]int32 {
	n := 0
	for i := range g.agents {
		n += len(g.agents[i].ips)
	}
	m := make(map[addrKey]int32, n)
	for i := range g.agents {
		for _, ip := range g.agents[i].ips {
			if _, ok := m[keyOfAddr(ip)]; !ok { // shared: the first agent
				m[keyOfAddr(ip)] = int32(i)
			}
		}
	}
	return m
}
