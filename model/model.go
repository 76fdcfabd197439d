package model

import "fmt"

// Observation is one completed transaction, as the model learns from it.
type Observation struct {
	IP        IP
	Signer    Signer
	Fee       uint64 // total fee in lamports
	ExecNanos uint64 // execution time; 0 = not executed
}

// IPSigner is the IP/signer reputation model: score(ip, signer) =
// ipScore × signerScore. It is not safe for concurrent use: one goroutine
// owns it (Clone gives another goroutine its own copy).
type IPSigner struct {
	p       Params
	ips     *table[IP]
	signers *table[Signer]
	pending []Observation // cap BatchSize
	vals    []float64     // Learn scratch: one value per observation

	observations uint64
	learns       uint64
	penalties    uint64
	penalizedNew uint64
	prunedIPs    uint64
	prunedSigner uint64
}

// Stats describes a model's state and what it has done since it was
// created (counters persist through Save and Load).
type Stats struct {
	IPs, Signers             int     // learned entries per table
	PenalizedIPs             int     // penalty-only IP entries (penalised, never learned)
	MedianIP, MedianSigner   float64 // what an unknown key scores: the median of the learned scores
	Pending                  int     // observations buffered for the next learn
	Observations             uint64  // Observe calls
	Learns                   uint64  // Learn runs
	Penalties                uint64  // Penalize calls
	PenalizedNew             uint64  // of which on IPs the model did not know
	PrunedIPs, PrunedSigners uint64  // entries pruning removed (learned and penalty-only)
}

// penCapacity is how many penalty-only IPs the table may hold: Penalize
// lets unknown IPs in until there are twice MaxIPs of them, then prunes
// them back to MaxIPs.
func penCapacity(p Params) int { return 2 * p.MaxIPs }

// New returns an empty model. REQUIRES: p.Validate() == nil (New panics
// otherwise; validate flags first).
func New(p Params) *IPSigner {
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("model.New: invalid params: %v", err))
	}
	return &IPSigner{
		p:       p,
		ips:     newTable[IP](p.MaxIPs+p.BatchSize, penCapacity(p), p.BatchSize, p.MinScore),
		signers: newTable[Signer](p.MaxSigners+p.BatchSize, 0, p.BatchSize, p.MinScore),
		pending: make([]Observation, 0, p.BatchSize),
		vals:    make([]float64, 0, p.BatchSize),
	}
}

// Params returns the model's parameters.
func (m *IPSigner) Params() Params { return m.p }

// Forward returns ipScore × signerScore, where an unknown key scores the
// exact median of its table's learned scores (1 when there are none) and a
// penalty-only IP that median × its penalty multiplier (at least
// MinScore). It does not allocate.
func (m *IPSigner) Forward(ip IP, s Signer) float64 {
	return m.ips.score(ip.canonical()) * m.signers.score(s)
}

// IPFactor and SignerFactor are the two factors of Forward:
// Forward(ip, s) == IPFactor(ip) * SignerFactor(s), bit for bit. A caller
// that must refuse packets scoring no more than some bar can refuse an
// IP's packets before looking at their signer when IPFactor(ip) ×
// MaxSignerFactor() × the highest possible fee per CU is no more than it,
// and score them later from the IPFactor it read then. None allocates.
func (m *IPSigner) IPFactor(ip IP) float64 { return m.ips.score(ip.canonical()) }

// SignerFactor is s's factor of Forward (see IPFactor).
func (m *IPSigner) SignerFactor(s Signer) float64 { return m.signers.score(s) }

// MaxSignerFactor returns the highest SignerFactor of any signer: the
// highest learned signer score, or the median an unknown signer gets. It
// scans the signer table once after each learn.
func (m *IPSigner) MaxSignerFactor() float64 { return m.signers.maxScore() }

// MinIPFactor returns the lowest IPFactor of any IP: MinScore, or the
// median an unknown IP gets when that is lower.
func (m *IPSigner) MinIPFactor() float64 { return min(m.ips.floor, m.ips.median) }

// IPScore returns ip's score and true when the model holds an entry for it
// (learned or penalty-only), or the IP median and false.
func (m *IPSigner) IPScore(ip IP) (float64, bool) {
	ip = ip.canonical()
	_, ok := m.ips.index[ip]
	return m.ips.score(ip), ok
}

// SignerScore returns s's learned score and true, or the signer median and
// false.
func (m *IPSigner) SignerScore(s Signer) (float64, bool) {
	_, ok := m.signers.index[s]
	return m.signers.score(s), ok
}

// Observe buffers o and, once BatchSize observations are buffered, learns
// from them and reports true. It does not allocate in steady state.
func (m *IPSigner) Observe(o Observation) (learned bool) {
	o.IP = o.IP.canonical()
	m.pending = append(m.pending, o)
	m.observations++
	if len(m.pending) < m.p.BatchSize {
		return false
	}
	m.Learn(m.pending)
	m.pending = m.pending[:0]
	return true
}

// Learn updates the model from one batch, in order:
//
//  1. value of each observation (Value), summed per IP and per signer in
//     batch order;
//  2. every learned key: score ← (1-α)·score + α·target, where target is
//     the key's batch mean if it has ≥ MinObservations observations, else
//     the table's learned median before this batch;
//  3. every other key with ≥ MinObservations observations becomes learned
//     at its mean, times its penalty multiplier if it was a penalty-only
//     IP;
//  4. scores are raised to MinScore, and each table's learned entries are
//     pruned to MaxIPs/MaxSigners by removing those closest to its (new)
//     median, ties broken by lower key bytes. Other penalty-only IPs keep
//     their multipliers (they score the new median × multiplier).
//
// The result depends only on the batch contents and order, never on map
// iteration order. Observe calls Learn; call it directly to learn from a
// batch of any size.
func (m *IPSigner) Learn(batch []Observation) {
	if cap(m.vals) < len(batch) {
		m.vals = make([]float64, len(batch))
	}
	vals := m.vals[:len(batch)]
	for i := range batch {
		vals[i] = Value(m.p, batch[i])
	}
	for i := range batch {
		m.ips.accumulate(batch[i].IP.canonical(), vals[i])
	}
	for i := range batch {
		m.signers.accumulate(batch[i].Signer, vals[i])
	}
	m.prunedIPs += uint64(m.ips.learn(m.p.Alpha, m.p.MinObservations, m.p.MaxIPs))
	m.prunedSigner += uint64(m.signers.learn(m.p.Alpha, m.p.MinObservations, m.p.MaxSigners))
	m.learns++
}

// Penalize multiplies ip's score by PenaltyFactor (a failed sigverify or an
// unparsable packet from it), never below MinScore. A learned IP stays
// learned (the median stays exact, O(log n) per call). An unknown IP
// becomes penalty-only with multiplier PenaltyFactor: it scores the learned
// median × PenaltyFactor and does not count in the median, so a flood of
// penalised new IPs cannot drag down what an honest newcomer scores. When
// there are 2·MaxIPs penalty-only IPs, the MaxIPs least penalised are first
// pruned (ties: lower key bytes go first), so a flood costs O(1) amortised
// per call and bounded memory. Penalize does not allocate.
func (m *IPSigner) Penalize(ip IP) {
	ip = ip.canonical()
	m.penalties++
	t := m.ips
	if s, ok := t.index[ip]; ok {
		if s >= 0 {
			t.set(s, float64(t.slab[s].score*m.p.PenaltyFactor))
		} else {
			e := &t.pslab[^s]
			e.mult = float64(e.mult * m.p.PenaltyFactor)
		}
		return
	}
	m.penalizedNew++
	if len(t.pslab) >= penCapacity(m.p) {
		m.prunedIPs += uint64(t.prunePen(m.p.MaxIPs))
	}
	t.insertPen(ip, m.p.PenaltyFactor)
}

// SetParams replaces the model's parameters, for a model loaded from a file
// the operator now runs with other flags. Buffered observations are kept
// (learned at once if they reach the new batch size); a table holding more
// than twice its new maximum of learned entries is pruned to it now,
// smaller excesses at the next learn; penalty-only IPs beyond twice the new
// MaxIPs are pruned to MaxIPs now; a higher MinScore raises the scores
// below it now.
func (m *IPSigner) SetParams(p Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	m.p = p
	if p.MinScore > m.ips.floor {
		m.ips.raiseFloor(p.MinScore)
		m.signers.raiseFloor(p.MinScore)
	}
	m.ips.floor, m.signers.floor = p.MinScore, p.MinScore
	if len(m.pending) >= p.BatchSize {
		m.Learn(m.pending)
		m.pending = m.pending[:0]
	}
	if cap(m.pending) < p.BatchSize {
		m.pending = append(make([]Observation, 0, p.BatchSize), m.pending...)
	}
	if m.ips.len() > 2*p.MaxIPs {
		m.prunedIPs += uint64(m.ips.prune(p.MaxIPs))
	}
	if len(m.ips.pslab) > penCapacity(p) {
		m.prunedIPs += uint64(m.ips.prunePen(p.MaxIPs))
	}
	if m.signers.len() > 2*p.MaxSigners {
		m.prunedSigner += uint64(m.signers.prune(p.MaxSigners))
	}
	return nil
}

// Stats returns the model's sizes, medians and counters.
func (m *IPSigner) Stats() Stats {
	return Stats{
		IPs:           m.ips.len(),
		PenalizedIPs:  len(m.ips.pslab),
		Signers:       m.signers.len(),
		MedianIP:      m.ips.median,
		MedianSigner:  m.signers.median,
		Pending:       len(m.pending),
		Observations:  m.observations,
		Learns:        m.learns,
		Penalties:     m.penalties,
		PenalizedNew:  m.penalizedNew,
		PrunedIPs:     m.prunedIPs,
		PrunedSigners: m.prunedSigner,
	}
}

// Clone returns an independent deep copy of m, for example to save it from
// another goroutine.
func (m *IPSigner) Clone() *IPSigner {
	c := New(m.p)
	c.restore(m.Snapshot())
	return c
}
