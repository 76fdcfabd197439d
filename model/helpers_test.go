package model

import (
	"math/rand/v2"
	"testing"
)

func ip4(a, b, c, d byte) IP { return IPv4([4]byte{a, b, c, d}) }

func signer(n uint32) Signer {
	var s Signer
	s[0], s[1], s[2], s[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	s[31] = 0x5a
	return s
}

// tx is an observation of a transaction claiming perCU lamports per CU
// over 100 000 CUs, paid (executed) or not.
func tx(ip IP, s Signer, perCU uint64, paid bool) Observation {
	o := Observation{IP: ip, Signer: s, Fee: perCU * 100_000, CUs: 100_000}
	if paid {
		o.ExecNanos = 500_000
	}
	return o
}

// step is one call of a sequence: an observation or a penalty.
type step struct {
	penalty bool
	claim   float64
	o       Observation
}

// sequence is a reproducible mix of observations and penalties over a
// few hundred IPv4 and IPv6 sources in a few neighbourhoods, with fresh
// sybil IPs and signers mixed in.
func sequence(seed uint64, n int) []step {
	r := rand.New(rand.NewPCG(seed, 17))
	out := make([]step, n)
	for i := range out {
		src := r.IntN(400)
		var ip IP
		switch {
		case src < 40:
			ip = IPv6([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(src), 0, 0, byte(r.IntN(3)), 15: byte(src)})
		case src < 100:
			ip = ip4(100, 64, byte(r.IntN(256)), byte(r.IntN(256))) // sybil: fresh addresses
		default:
			ip = ip4(10, byte(src%7), byte(src/7), byte(src))
		}
		s := signer(uint32(src))
		if src >= 40 && src < 100 {
			s = signer(uint32(1_000_000 + i)) // fresh fee payers
		}
		o := tx(ip, s, uint64(1+src*37%5000), src%3 != 0)
		switch {
		case src >= 40 && src < 100 && r.IntN(4) > 0:
			out[i] = step{penalty: true, claim: float64(r.IntN(3)) * 5000, o: o}
		case r.IntN(50) == 0:
			out[i] = step{penalty: true, o: o}
		default:
			out[i] = step{o: o}
		}
	}
	return out
}

func run(m *IPSigner, steps []step) {
	for _, s := range steps {
		if s.penalty {
			m.Penalize(s.o.IP, s.claim)
		} else {
			m.Observe(s.o)
		}
	}
}

// smallParams keeps tables small so that evictions happen.
func smallParams() Params {
	p := DefaultParams()
	p.MaxIPs, p.MaxPrefixes, p.MaxSigners = 64, 16, 64
	p.Window = 50
	return p
}

func filled(tb testing.TB, p Params, seed uint64, n int) *IPSigner {
	tb.Helper()
	m := New(p)
	run(m, sequence(seed, n))
	return m
}

func approx(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if d := got - want; d > tol || d < -tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}
