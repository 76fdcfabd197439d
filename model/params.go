package model

import (
	"errors"
	"fmt"
	"math"
)

// Limits on Params, so that a model's preallocated buffers stay bounded
// (at the limits, a few hundred MiB) and every score stays a finite number.
const (
	MaxBatchSize          = 1 << 20
	MaxTableSize          = 1 << 20
	MaxExecutedMultiplier = 1e9

	// LeastMinScore is the smallest MinScore allowed: the product of two
	// floored scores (IP × signer) is then still a normal float64.
	LeastMinScore = 1e-150
)

// Params are the model's tuning constants; DefaultParams gives the
// reference's values.
type Params struct {
	// BatchSize is the number of completed transactions Observe buffers
	// before it runs Learn (400).
	BatchSize int
	// MinObservations is how many observations a key needs in one batch
	// for its mean to count (5).
	MinObservations int
	// Alpha is the weight of the new value in the exponential moving
	// average: score ← (1-Alpha)·score + Alpha·new (0.05).
	Alpha float64
	// ExecutedMultiplier multiplies the value of a transaction the
	// scheduler executed (10).
	ExecutedMultiplier float64
	// AssumedExecNanos is the execution time assumed for a transaction
	// that was not executed (100 000 ns).
	AssumedExecNanos uint64
	// PenaltyFactor multiplies an IP's score on each failed sigverify or
	// unparsable packet (0.01).
	PenaltyFactor float64
	// MaxIPs and MaxSigners are the table sizes pruning keeps (10 000).
	MaxIPs     int
	MaxSigners int
	// MinScore is the floor of every score (1e-30): no penalty, EMA or
	// low-value batch takes a score below it, so products of scores never
	// underflow to 0 and fee/CU keeps ranking the worst senders.
	MinScore float64
}

// DefaultParams returns the reference's constants.
func DefaultParams() Params {
	return Params{
		BatchSize:          400,
		MinObservations:    5,
		Alpha:              0.05,
		ExecutedMultiplier: 10,
		AssumedExecNanos:   100_000,
		PenaltyFactor:      0.01,
		MaxIPs:             10_000,
		MaxSigners:         10_000,
		MinScore:           1e-30,
	}
}

// Validate reports every parameter out of range, joined, or nil.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("model: "+format, args...))
	}
	if p.BatchSize < 1 || p.BatchSize > MaxBatchSize {
		bad("batch size must be between 1 and %d, got %d", MaxBatchSize, p.BatchSize)
	}
	if p.MinObservations < 1 {
		bad("min observations must be at least 1, got %d", p.MinObservations)
	} else if p.BatchSize >= 1 && p.MinObservations > p.BatchSize {
		bad("min observations (%d) exceeds the batch size (%d): no key could ever be learned",
			p.MinObservations, p.BatchSize)
	}
	if !(p.Alpha >= 0 && p.Alpha <= 1) {
		bad("alpha must be between 0 and 1, got %v", p.Alpha)
	}
	if !(p.ExecutedMultiplier > 0 && p.ExecutedMultiplier <= MaxExecutedMultiplier) {
		bad("executed multiplier must be above 0 and at most %g, got %v",
			float64(MaxExecutedMultiplier), p.ExecutedMultiplier)
	}
	if p.AssumedExecNanos < 1 {
		bad("assumed execution time must be at least 1 ns, got %d", p.AssumedExecNanos)
	}
	if !(p.PenaltyFactor >= 0 && p.PenaltyFactor <= 1) {
		bad("penalty factor must be between 0 and 1, got %v", p.PenaltyFactor)
	}
	if p.MaxIPs < 1 || p.MaxIPs > MaxTableSize {
		bad("max IPs must be between 1 and %d, got %d", MaxTableSize, p.MaxIPs)
	}
	if p.MaxSigners < 1 || p.MaxSigners > MaxTableSize {
		bad("max signers must be between 1 and %d, got %d", MaxTableSize, p.MaxSigners)
	}
	if !(p.MinScore >= LeastMinScore) || math.IsInf(p.MinScore, 0) {
		bad("min score must be finite and at least %g, got %v", LeastMinScore, p.MinScore)
	}
	return errors.Join(errs...)
}

// Value is what one completed transaction teaches the model: its total fee
// per nanosecond of execution (AssumedExecNanos when it was not executed),
// times ExecutedMultiplier when it was. For valid Params it is finite and
// non-negative.
func Value(p Params, o Observation) float64 {
	if o.ExecNanos == 0 {
		return float64(o.Fee) / float64(max(p.AssumedExecNanos, 1))
	}
	return float64(o.Fee) / float64(o.ExecNanos) * p.ExecutedMultiplier
}

// finite reports whether x is a usable score: finite and not negative
// (negative zero included, so that a score's bits are canonical).
func finite(x float64) bool {
	return !math.IsNaN(x) && !math.IsInf(x, 0) && !math.Signbit(x)
}
