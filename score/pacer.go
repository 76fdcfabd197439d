package score

import (
	"math"
	"math/bits"
	"time"
)

// Pacer defaults and bounds.
const (
	DefaultPacerTick = time.Millisecond
	minPacerTick     = time.Microsecond
	maxPacerTick     = time.Second
	maxPacerPPS      = 1_000_000_000
	nanosPerSecond   = uint64(time.Second)
)

// Pacer is a token bucket that releases packets at a target rate, driven
// by the caller's clock (int64 nanoseconds) so that tests are exact.
//
// Time is cut into ticks (1 ms by default) counted from the first call to
// Allow. Every tick adds targetPPS × tick / 1 s tokens, fractions carried
// exactly, so any second made of whole ticks adds exactly targetPPS. The
// bucket holds at most burst tokens: budget left unused carries over up to
// burst and no further, and no window of one second ever releases more
// than targetPPS + burst packets. (A burst smaller than one tick's tokens
// is raised to that, or the target could not be reached.)
//
//	for {
//		n := pacer.Allow(now)
//		sent := sendUpTo(n)
//		pacer.Sent(sent)
//	}
type Pacer struct {
	rate    uint64 // targetPPS × tick ns: token·ns added per tick
	tick    int64  // ns
	burst   uint64 // bucket capacity
	tokens  uint64 // available now
	frac    uint64 // carried fraction, in token·ns (< 1e9)
	start   int64  // clock at the first Allow
	last    int64  // index of the last tick accounted for
	started bool
}

// NewPacer returns a pacer releasing targetPPS packets per second (at
// most 1e9) on ticks of the given length (DefaultPacerTick if ≤ 0;
// clamped to 1 µs..1 s), holding at most burst tokens (at least one
// tick's worth). A zero targetPPS releases nothing.
func NewPacer(targetPPS uint64, tick time.Duration, burst uint64) *Pacer {
	if tick <= 0 {
		tick = DefaultPacerTick
	}
	tick = min(max(tick, minPacerTick), maxPacerTick)
	targetPPS = min(targetPPS, maxPacerPPS)
	rate := targetPPS * uint64(tick) // ≤ 1e9 × 1e9 < 2^64
	perTick := (rate + nanosPerSecond - 1) / nanosPerSecond
	return &Pacer{
		rate:  rate,
		tick:  int64(tick),
		burst: max(burst, perTick),
	}
}

// Burst returns the bucket capacity in effect.
func (p *Pacer) Burst() uint64 { return p.burst }

// Allow brings the bucket up to now and returns how many packets may be
// sent now. Time that goes backwards adds nothing.
func (p *Pacer) Allow(now int64) int {
	if !p.started {
		p.started = true
		p.start = now
		p.last = -1
	}
	if now >= p.start {
		if t := (now - p.start) / p.tick; t > p.last {
			p.tokens = min(satAdd(p.tokens, p.earn(uint64(t-p.last))), p.burst)
			p.last = t
		}
	}
	return int(min(p.tokens, math.MaxInt))
}

// earn returns the whole tokens k ticks earn, carrying the fraction, in
// 128-bit arithmetic: a long idle gap saturates instead of wrapping (the
// bucket is full then anyway, and the fraction immaterial).
func (p *Pacer) earn(k uint64) uint64 {
	hi, lo := bits.Mul64(k, p.rate)
	lo, c := bits.Add64(lo, p.frac, 0)
	hi += c
	if hi >= nanosPerSecond {
		p.frac = 0
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, nanosPerSecond)
	p.frac = r
	return q
}

// Sent reports that n packets were sent of those Allow permitted; n is
// clamped to the tokens available (and negative n ignored).
func (p *Pacer) Sent(n int) {
	if n <= 0 {
		return
	}
	p.tokens -= min(uint64(n), p.tokens)
}

// Tokens returns the tokens available as of the last Allow.
func (p *Pacer) Tokens() uint64 { return p.tokens }
