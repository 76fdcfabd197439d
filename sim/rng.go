package sim

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Draws on a concrete *rand.PCG, so the per-packet path makes no interface
// calls. Each function consumes a fixed number of PCG outputs, which keeps
// the traffic a pure function of the seed.

// uniform returns a float64 in [0, 1).
func uniform(r *rand.PCG) float64 { return float64(r.Uint64()>>11) * 0x1p-53 }

// intN returns an int in [0, n) for n ≥ 1 (multiply-shift; the bias, at
// most n/2⁶⁴, is irrelevant here).
func intN(r *rand.PCG, n int) int {
	hi, _ := bits.Mul64(r.Uint64(), uint64(n))
	return int(hi)
}

// expDraw returns an exponentially distributed float64 with mean 1.
func expDraw(r *rand.PCG) float64 { return -math.Log1p(-uniform(r)) }

// normDraw returns a standard normal float64 (Box–Muller, one of the pair).
func normDraw(r *rand.PCG) float64 {
	u1 := 1 - uniform(r) // (0, 1]
	u2 := uniform(r)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// logNormal returns median × e^(σ·N(0,1)), clamped to [0, 10¹²] and
// truncated to an integer.
func logNormal(r *rand.PCG, median, sigma float64) uint64 {
	v := median * math.Exp(sigma*normDraw(r))
	if !(v >= 0) {
		return 0
	}
	if v > 1e12 {
		return 1e12
	}
	return uint64(v)
}
