package sim

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Uniform draws work on a concrete *rand.PCG, so they make no interface
// calls; the exponential and normal ones use math/rand/v2's ziggurat on a
// rand.Rand over the same PCG. Either way the traffic is a pure function of
// the seed.

// uniform returns a float64 in [0, 1).
func uniform(r *rand.PCG) float64 { return float64(r.Uint64()>>11) * 0x1p-53 }

// intN returns an int in [0, n) for n ≥ 1 (multiply-shift; the bias, at
// most n/2⁶⁴, is irrelevant here).
func intN(r *rand.PCG, n int) int {
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

// expDraw returns an exponentially distributed float64 with mean 1, and
// normDraw a standard normal one: the ziggurat draws of math/rand/v2, a
// few nanoseconds each against tens for a logarithm or a cosine. r wraps
// the agent's PCG, so the traffic stays a pure function of the seed (the
// ziggurat may take more than one output on its rare slow path).
func expDraw(r *rand.Rand) float64 { return r.ExpFloat64() }

func normDraw(r *rand.Rand) float64 { return r.NormFloat64() }

// logNormal returns median × e^(σ·N(0,1)), clamped to [0, 10¹²] and
// truncated to an integer.
func logNormal(r *rand.Rand, median, sigma float64) uint64 {
	v := median * math.Exp(sigma*normDraw(r))
	if !(v >= 0) {
		return 0
	}
	if v > 1e12 {
		return 1e12
	}
	return uint64(v)
}
