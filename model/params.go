package model

import (
	"errors"
	"fmt"
	"math"
)

// Limits on Params, so that a model's preallocated tables stay bounded
// (at the limits, a few hundred MiB) and every score stays a finite number.
const (
	MaxTableSize   = 1 << 22
	MaxWindow      = 1 << 20
	MaxPriorWeight = 1 << 20

	// LeastMinScore is the smallest MinScore allowed: the product of two
	// floored factors (IP × signer) is then still a normal float64.
	LeastMinScore = 1e-150
)

// Params are the model's tuning constants; DefaultParams gives the
// defaults (each is a flag of qos and qos-cli).
type Params struct {
	// Window is how many of its latest outcomes a record averages over:
	// its rate is the plain mean of its first Window outcomes, then an
	// exponential moving average with weight 1/Window per outcome (200).
	Window int
	// PriorWeight is how many outcomes' worth of weight a record's prior
	// (the rate of the level above it) gets against its own outcomes (4).
	PriorWeight float64
	// UnknownPrior is the rate the newcomer record starts from, before
	// any unknown sender has been seen (1: senders are presumed to pay).
	UnknownPrior float64
	// MinObservations: an IP whose record holds fewer outcomes than this
	// is a newcomer, and its outcomes also teach the newcomer record, the
	// prior of every unknown neighbourhood (5).
	MinObservations int
	// MaxIPs, MaxPrefixes and MaxSigners bound the IP table, each of the
	// two prefix tables (/24 and /48; /16 and /32) and the signer table
	// (least recently updated entries are evicted first).
	MaxIPs      int
	MaxPrefixes int
	MaxSigners  int
	// UnpaidFloor is the least IP factor of a sender whose packets verify
	// (1e-6): it ranks senders that are never paid (fees below the blocks'
	// bar) above those whose claims fail, and keeps them from being refused
	// unparsed for good. 0 disables it.
	UnpaidFloor float64
	// FailTolerance is the share of failed claims (bad signatures,
	// unparsable packets) up to which a sender's factor is its rate alone
	// (0.1); beyond it the factor is scaled down linearly, to 0 at one
	// half. Applies to records with at least MinObservations outcomes.
	FailTolerance float64
	// MinScore is the floor of every factor (1e-30): a product of factors
	// never underflows to 0, and fee/CU still ranks the worst senders.
	MinScore float64
	// BarQuantile is the quantile of the fee per CU of paid outcomes that
	// the inclusion bar tracks (0.05): a verified transaction left unpaid
	// that claimed less than the bar was outbid, and its outcome is
	// neutral (see the package doc). 0 disables the bar: every unpaid
	// outcome counts.
	BarQuantile float64
	// BarStep is the relative step of the bar per paid outcome (0.01):
	// down by BarStep when a paid claim is below it, up by
	// BarStep·q/(1−q) otherwise (q = BarQuantile).
	BarStep float64
}

// DefaultParams returns the default constants.
func DefaultParams() Params {
	return Params{
		Window:          200,
		PriorWeight:     4,
		UnknownPrior:    1,
		MinObservations: 5,
		MaxIPs:          65_536,
		MaxPrefixes:     65_536,
		MaxSigners:      65_536,
		UnpaidFloor:     1e-6,
		FailTolerance:   0.1,
		MinScore:        1e-30,
		BarQuantile:     0.05,
		BarStep:         0.01,
	}
}

// Validate reports every parameter out of range, joined, or nil.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("model: "+format, args...))
	}
	if p.Window < 1 || p.Window > MaxWindow {
		bad("window must be between 1 and %d outcomes, got %d", MaxWindow, p.Window)
	}
	if !(p.PriorWeight > 0 && p.PriorWeight <= MaxPriorWeight) {
		bad("prior weight must be above 0 and at most %d, got %v", MaxPriorWeight, p.PriorWeight)
	}
	if !(p.UnknownPrior >= 0 && p.UnknownPrior <= 1) {
		bad("unknown prior must be between 0 and 1, got %v", p.UnknownPrior)
	}
	if p.MinObservations < 0 || p.MinObservations > MaxWindow {
		bad("min observations must be between 0 and %d, got %d", MaxWindow, p.MinObservations)
	}
	if p.MaxIPs < 1 || p.MaxIPs > MaxTableSize {
		bad("max IPs must be between 1 and %d, got %d", MaxTableSize, p.MaxIPs)
	}
	if p.MaxPrefixes < 1 || p.MaxPrefixes > MaxTableSize {
		bad("max prefixes must be between 1 and %d, got %d", MaxTableSize, p.MaxPrefixes)
	}
	if p.MaxSigners < 1 || p.MaxSigners > MaxTableSize {
		bad("max signers must be between 1 and %d, got %d", MaxTableSize, p.MaxSigners)
	}
	if !(p.FailTolerance >= 0 && p.FailTolerance < 0.5) {
		bad("fail tolerance must be at least 0 and below 0.5, got %v", p.FailTolerance)
	}
	if !(p.UnpaidFloor >= 0 && p.UnpaidFloor <= 1) {
		bad("unpaid floor must be between 0 and 1, got %v", p.UnpaidFloor)
	}
	if !(p.MinScore >= LeastMinScore && p.MinScore <= 1) {
		bad("min score must be between %g and 1, got %v", LeastMinScore, p.MinScore)
	}
	if !(p.BarQuantile >= 0 && p.BarQuantile <= 0.5) {
		bad("bar quantile must be between 0 and 0.5, got %v", p.BarQuantile)
	}
	if !(p.BarStep > 0 && p.BarStep <= 0.5) {
		bad("bar step must be above 0 and at most 0.5, got %v", p.BarStep)
	}
	return errors.Join(errs...)
}

// Value is what one completed transaction brought, as recorded in the
// database and as the model counts it: its fee per compute unit when the
// scheduler executed it (included, so its fee was paid), and 0 when it
// was verified but never included — it paid nothing.
func Value(_ Params, o Observation) float64 {
	if o.ExecNanos == 0 {
		return 0
	}
	return o.claim()
}

// finite reports whether x is a usable number: finite and not negative
// (negative zero included, so that a value's bits are canonical).
func finite(x float64) bool {
	return !math.IsNaN(x) && !math.IsInf(x, 0) && !math.Signbit(x)
}
