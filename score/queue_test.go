package score

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// oracle is the queue's specification as a sorted slice: entries kept
// from lowest to highest in the order "above".
type oracle struct {
	cap   int
	ttl   int64
	seq   uint64
	es    []Entry // ascending: es[0] lowest, es[len-1] highest
	stats QueueStats
}

func (o *oracle) insert(e Entry) {
	i, _ := slices.BinarySearchFunc(o.es, e, func(a, b Entry) int {
		switch {
		case entryAbove(&b, &a):
			return -1
		case entryAbove(&a, &b):
			return 1
		}
		return 0
	})
	o.es = slices.Insert(o.es, i, e)
}

func (o *oracle) push(score float64, hash uint64, now int64) (admitted, evicted bool) {
	if math.IsNaN(score) {
		score = math.Inf(-1)
	}
	e := Entry{Score: score, Seq: o.seq, Enqueued: now, Hash: hash, Aux: auxFor(hash)}
	if len(o.es) == o.cap {
		m := o.es[0]
		switch {
		case now-m.Enqueued > o.ttl:
			o.stats.Expired++
		case !entryAbove(&e, &m):
			o.stats.RejectedLow++
			return false, false
		default:
			o.stats.Evicted++
			evicted = true
		}
		o.es = o.es[1:]
	}
	o.seq++
	o.stats.Pushed++
	o.insert(e)
	return true, evicted
}

func (o *oracle) popMax(now int64) (Entry, bool) {
	for len(o.es) > 0 {
		e := o.es[len(o.es)-1]
		o.es = o.es[:len(o.es)-1]
		if now-e.Enqueued > o.ttl {
			o.stats.Expired++
			continue
		}
		o.stats.Popped++
		return e, true
	}
	return Entry{}, false
}

func (o *oracle) expireMin(now int64, limit int) int {
	k := 0
	for k < limit && len(o.es) > 0 && now-o.es[0].Enqueued > o.ttl {
		o.es = o.es[1:]
		o.stats.Expired++
		k++
	}
	return k
}

// recordFor returns a record whose data encodes hash, so a popped record
// can be matched to its entry.
func recordFor(hash uint64) *channels.Packet {
	p := new(channels.Packet)
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], hash)
	binary.LittleEndian.PutUint64(b[8:], ^hash)
	p.SetData(b[:1+int(hash%15)])
	p.SetPort(uint16(hash))
	p.SetFlags(uint8(hash >> 8))
	return p
}

func checkRecord(t *testing.T, p *channels.Packet, hash uint64) {
	t.Helper()
	w := recordFor(hash)
	n := w.Size()
	if p.Size() != n || string(p[:n]) != string(w[:n]) || string(p[channels.PacketDataSize:]) != string(w[channels.PacketDataSize:]) {
		t.Fatalf("record for hash %d corrupted", hash)
	}
}

func sameEntry(a, b Entry) bool {
	return (a.Score == b.Score || (math.IsInf(a.Score, -1) && math.IsInf(b.Score, -1))) &&
		a.Seq == b.Seq && a.Enqueued == b.Enqueued && a.Hash == b.Hash && a.Aux == b.Aux
}

// TestQueueOracle drives the queue and the sorted-slice oracle with the
// same random pushes (many tied scores), pops and expiries, and compares
// every result, the counters and the heap's consistency.
func TestQueueOracle(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 4, 7, 16, 33, 100} {
		for seed := range uint64(6) {
			rng := rand.New(rand.NewPCG(seed, uint64(capacity)))
			ttl := time.Duration(50 + rng.IntN(200))
			q := NewQueue(capacity, ttl)
			o := &oracle{cap: capacity, ttl: int64(ttl)}
			now := int64(rng.IntN(1000)) - 500
			hash := uint64(0)
			for step := range 4000 {
				now += int64(rng.IntN(12))
				switch op := rng.IntN(100); {
				case op < 60:
					var score float64
					switch rng.IntN(10) {
					case 0:
						score = rng.Float64() * 1e6
					case 1:
						score = math.NaN()
					case 2:
						score = math.Inf(1 - 2*rng.IntN(2))
					default:
						score = float64(rng.IntN(8)) // many ties
					}
					hash++
					admits := q.Admits(score, now)
					a, ev := q.Push(recordFor(hash), score, hash, auxFor(hash), now)
					wa, wev := o.push(score, hash, now)
					if a != wa || ev != wev {
						t.Fatalf("cap %d seed %d step %d: Push = %v,%v, want %v,%v", capacity, seed, step, a, ev, wa, wev)
					}
					if admits != wa {
						t.Fatalf("cap %d seed %d step %d: Admits(%v) = %v, Push admitted %v", capacity, seed, step, score, admits, wa)
					}
				case op < 77: // Pop: the record only
					p, aux, ok := q.Pop(now)
					we, wok := o.popMax(now)
					if ok != wok {
						t.Fatalf("cap %d seed %d step %d: Pop ok = %v, want %v", capacity, seed, step, ok, wok)
					}
					if ok && aux != auxFor(we.Hash) {
						t.Fatalf("cap %d seed %d step %d: Pop aux = %d, want %d", capacity, seed, step, aux, auxFor(we.Hash))
					}
					if ok {
						checkRecord(t, p, we.Hash)
					} else if p != nil {
						t.Fatal("nil record expected")
					}
				case op < 95:
					p, e, ok := q.PopMax(now)
					we, wok := o.popMax(now)
					if ok != wok || (ok && !sameEntry(e, we)) {
						t.Fatalf("cap %d seed %d step %d: PopMax = %+v,%v, want %+v,%v", capacity, seed, step, e, ok, we, wok)
					}
					if ok {
						checkRecord(t, p, e.Hash)
					} else if p != nil {
						t.Fatal("nil record expected")
					}
				default:
					limit := rng.IntN(4)
					if k, wk := q.ExpireMin(now, limit), o.expireMin(now, limit); k != wk {
						t.Fatalf("ExpireMin = %d, want %d", k, wk)
					}
				}
				if q.Len() != len(o.es) || q.Stats() != o.stats {
					t.Fatalf("cap %d seed %d step %d: len %d stats %+v, want %d %+v", capacity, seed, step, q.Len(), q.Stats(), len(o.es), o.stats)
				}
				if err := q.verify(); err != nil {
					t.Fatalf("cap %d seed %d step %d: %v", capacity, seed, step, err)
				}
				if e, ok := q.PeekMax(); ok != (len(o.es) > 0) || (ok && !sameEntry(e, o.es[len(o.es)-1])) {
					t.Fatal("PeekMax")
				}
			}
		}
	}
}

func TestQueueTiesAndEviction(t *testing.T) {
	q := NewQueue(3, time.Second)
	push := func(score float64, hash uint64) (bool, bool) { return q.Push(recordFor(hash), score, hash, 0, 0) }
	push(5, 1)
	push(5, 2)
	push(5, 3)
	// Full of equal scores: an equal newcomer is refused.
	if a, _ := push(5, 4); a {
		t.Fatal("equal newcomer admitted")
	}
	// A higher one evicts the newest of the lowest (hash 3).
	if a, ev := push(6, 5); !a || !ev {
		t.Fatal("higher newcomer refused")
	}
	var got []uint64
	for {
		p, e, ok := q.PopMax(0)
		if !ok {
			break
		}
		checkRecord(t, p, e.Hash)
		got = append(got, e.Hash)
	}
	if !slices.Equal(got, []uint64{5, 1, 2}) {
		t.Fatalf("pop order %v", got)
	}
	if s := q.Stats(); s != (QueueStats{Pushed: 4, Evicted: 1, RejectedLow: 1, Popped: 3}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestQueueTTL(t *testing.T) {
	q := NewQueue(4, 100)
	q.Push(recordFor(1), 9, 1, 0, 0)   // expires after 100
	q.Push(recordFor(2), 1, 2, 0, 50)  // expires after 150
	q.Push(recordFor(3), 5, 3, 0, 100) // expires after 200
	// At 100 nothing has expired (older than, not as old as, the TTL).
	if e, ok := q.PeekMax(); !ok || e.Hash != 1 {
		t.Fatal("peek")
	}
	_, e, ok := q.PopMax(100)
	if !ok || e.Hash != 1 {
		t.Fatalf("pop at 100: %+v", e)
	}
	q.Push(recordFor(4), 7, 4, 0, 0) // born old
	// At 151: hash 4 and 2 expired; hash 3 is the best live one.
	_, e, ok = q.PopMax(151)
	if !ok || e.Hash != 3 || q.Stats().Expired != 1 {
		t.Fatalf("pop at 151: %+v %+v", e, q.Stats())
	}
	if n := q.ExpireMin(151, 10); n != 1 || q.Len() != 0 {
		t.Fatalf("ExpireMin = %d, len %d", n, q.Len())
	}
	// A full queue whose lowest entry has expired admits any newcomer.
	q = NewQueue(2, 100)
	q.Push(recordFor(1), 5, 1, 0, 0)
	q.Push(recordFor(2), 6, 2, 0, 50)
	if a, ev := q.Push(recordFor(3), 1, 3, 0, 120); !a || ev {
		t.Fatalf("push over expired: %v %v", a, ev)
	}
	if s := q.Stats(); s.Expired != 1 || s.Evicted != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestQueueDefaults(t *testing.T) {
	q := NewQueue(0, 0)
	if q.Cap() != DefaultQueueCapacity || q.TTL() != DefaultQueueTTL {
		t.Fatalf("defaults %d %v", q.Cap(), q.TTL())
	}
	if _, _, ok := q.PopMax(0); ok {
		t.Fatal("pop from empty")
	}
	if _, ok := q.PeekMax(); ok {
		t.Fatal("peek into empty")
	}
	// Fill completely with distinct scores, then drain in order.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range DefaultQueueCapacity {
		if a, _ := q.Push(recordFor(uint64(i)), rng.Float64(), uint64(i), 0, 0); !a {
			t.Fatal("push refused below capacity")
		}
	}
	if err := q.verify(); err != nil {
		t.Fatal(err)
	}
	last := math.Inf(1)
	for range DefaultQueueCapacity {
		p, e, ok := q.PopMax(1)
		if !ok || e.Score > last {
			t.Fatalf("pop out of order: %v after %v", e.Score, last)
		}
		checkRecord(t, p, e.Hash)
		last = e.Score
	}
}

func TestMinLevel(t *testing.T) {
	for i := range 1 << 12 {
		level := 0
		for j := i + 1; j > 1; j >>= 1 {
			level++
		}
		if minLevel(i) != (level%2 == 0) {
			t.Fatalf("minLevel(%d) = %v at level %d", i, minLevel(i), level)
		}
	}
}

// auxFor is the caller's value the oracle test pushes with hash.
func auxFor(hash uint64) uint64 { return hash*3 + 1 }

// entryAbove is the queue's order on entries, as specified: higher score,
// or equal score and older.
func entryAbove(a, b *Entry) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Seq < b.Seq)
}

// TestNodeOrder: the 128-bit node order, lower and higher agree with the
// float order of scores (then age) on special and ordinary values, and
// the score survives the key round trip.
func TestNodeOrder(t *testing.T) {
	scores := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64,
		math.Copysign(0, -1), 0, math.SmallestNonzeroFloat64, 1e-30, 0.5, 1, 1.5, 1e300, math.MaxFloat64, math.Inf(1), math.NaN()}
	spec := func(s float64) float64 { // what the queue ranks by: NaN is −∞
		if s != s {
			return math.Inf(-1)
		}
		return s
	}
	for _, a := range scores {
		for _, b := range scores {
			for _, seqs := range [][2]uint64{{1, 2}, {2, 1}, {0, math.MaxUint64}, {7, 7}} {
				na, nb := newNode(a, seqs[0], 0), newNode(b, seqs[1], 0)
				ea := Entry{Score: spec(a), Seq: seqs[0]}
				eb := Entry{Score: spec(b), Seq: seqs[1]}
				want := entryAbove(&ea, &eb)
				if got := above(&na, &nb); got != want {
					t.Fatalf("above(%v#%d, %v#%d) = %v, want %v", a, seqs[0], b, seqs[1], got, want)
				}
				h := []node{na, nb}
				wantLow, wantHigh := 0, 0
				if want {
					wantLow = 1
				} else if entryAbove(&eb, &ea) {
					wantHigh = 1
				}
				if got := lower(h, 0, 1); got != wantLow {
					t.Fatalf("lower(%v#%d, %v#%d) = %d, want %d", a, seqs[0], b, seqs[1], got, wantLow)
				}
				if got := higher(h, 0, 1); got != wantHigh {
					t.Fatalf("higher(%v#%d, %v#%d) = %d, want %d", a, seqs[0], b, seqs[1], got, wantHigh)
				}
			}
		}
		if got := keyScore(newNode(a, 0, 0).key); got != spec(a) || math.Signbit(got) != (spec(a) < 0) {
			t.Fatalf("score %v comes back as %v", a, got)
		}
	}
}
