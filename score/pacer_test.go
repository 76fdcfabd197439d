package score

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const sec = int64(time.Second)

// drain runs a pacer from start for d, calling Allow every step and
// sending everything allowed; it returns the packets sent in each whole
// second.
func drain(p *Pacer, start, step, d int64) []int {
	perSec := make([]int, d/sec)
	for now := start; now < start+d; now += step {
		n := p.Allow(now)
		p.Sent(n)
		perSec[(now-start)/sec] += n
	}
	return perSec
}

func TestPacerExactPerSecond(t *testing.T) {
	cases := []struct {
		pps   uint64
		tick  time.Duration
		burst uint64
		step  int64
	}{
		{1000, time.Millisecond, 0, int64(time.Millisecond)},
		{1000, time.Millisecond, 10, int64(100 * time.Microsecond)},
		{1500, time.Millisecond, 5, int64(time.Millisecond)},    // 1.5 per tick
		{7, time.Millisecond, 0, int64(time.Millisecond)},       // 0.007 per tick
		{333_333, time.Millisecond, 0, int64(time.Millisecond)}, // 333.333 per tick
		{4_000_000, time.Millisecond, 4000, int64(250 * time.Microsecond)},
		{1000, 100 * time.Millisecond, 0, int64(time.Millisecond)}, // the reference's tick
		{999, 0, 0, int64(time.Millisecond)},                       // default tick
	}
	for _, c := range cases {
		p := NewPacer(c.pps, c.tick, c.burst)
		for s, got := range drain(p, -12345, c.step, 5*sec) {
			if got != int(c.pps) {
				t.Fatalf("%+v: second %d sent %d", c, s, got)
			}
		}
	}
}

// TestPacerWindow sends random amounts at random times and checks that no
// one-second window, aligned or not, holds more than target + burst.
func TestPacerWindow(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 99))
		pps := uint64(100 + rng.IntN(100_000))
		burst := uint64(rng.IntN(5000))
		// Ticks that divide a second, so a second holds whole ticks.
		tick := time.Duration([]int{1, 2, 4, 5, 8, 10, 100}[rng.IntN(7)]) * time.Millisecond
		p := NewPacer(pps, tick, burst)
		limit := int(pps + p.Burst())
		type ev struct {
			at int64
			n  int
		}
		var evs []ev
		now := int64(rng.Uint64() >> 2)
		for range 100_000 {
			switch rng.IntN(2000) {
			case 0:
				now += int64(rng.IntN(int(3 * sec))) // idle
			default:
				now += int64(rng.IntN(int(2 * time.Millisecond)))
			}
			n := p.Allow(now)
			if n > int(p.Burst()) {
				t.Fatalf("allowed %d above burst %d", n, p.Burst())
			}
			k := n
			if rng.IntN(3) == 0 {
				k = rng.IntN(n + 1)
			}
			p.Sent(k)
			if k > 0 {
				evs = append(evs, ev{now, k})
			}
		}
		// Sliding window starting at each send.
		j, sum, most := 0, 0, 0
		for i := range evs {
			for j < len(evs) && evs[j].at < evs[i].at+sec {
				sum += evs[j].n
				j++
			}
			if sum > limit {
				t.Fatalf("seed %d: %d sent in the second from %d (limit %d)", seed, sum, evs[i].at, limit)
			}
			most = max(most, sum)
			sum -= evs[i].n
		}
		// The bound is not vacuous: some second came close to it.
		if most < int(pps) {
			t.Fatalf("seed %d: busiest second %d, target %d", seed, most, pps)
		}
		t.Logf("seed %d: target %d + burst %d: busiest second %d", seed, pps, p.Burst(), most)
	}
}

func TestPacerCarry(t *testing.T) {
	ms := int64(time.Millisecond)
	p := NewPacer(1000, time.Millisecond, 50)
	if n := p.Allow(0); n != 1 {
		t.Fatalf("first tick: %d", n)
	}
	// Nothing sent for 10 ticks: 11 carried.
	if n := p.Allow(10 * ms); n != 11 {
		t.Fatalf("after 10 idle ticks: %d", n)
	}
	p.Sent(4)
	if n := p.Allow(10*ms + ms/2); n != 7 {
		t.Fatalf("same tick after sending 4: %d", n)
	}
	// Idle for two seconds: only the burst carries.
	if n := p.Allow(2 * sec); n != 50 {
		t.Fatalf("after a long idle: %d", n)
	}
	p.Sent(50)
	if n := p.Allow(2*sec + ms); n != 1 {
		t.Fatalf("after draining: %d", n)
	}
	// Sent more than available clamps at zero; negative is ignored.
	p.Sent(1000)
	p.Sent(-5)
	if n := p.Allow(2*sec + ms); n != 0 {
		t.Fatalf("after oversend: %d", n)
	}
	// Time going backwards adds nothing.
	if n := p.Allow(0); n != 0 {
		t.Fatalf("backwards: %d", n)
	}
	if n := p.Allow(2*sec + 2*ms); n != 1 {
		t.Fatalf("forward again: %d", n)
	}
	// An enormous gap saturates, not wraps.
	if n := p.Allow(math.MaxInt64); n != 50 {
		t.Fatalf("huge gap: %d", n)
	}
}

func TestPacerLimits(t *testing.T) {
	p := NewPacer(0, time.Millisecond, 100)
	for now := int64(0); now < 3*sec; now += int64(time.Millisecond) {
		if p.Allow(now) != 0 {
			t.Fatal("zero target released a packet")
		}
	}
	// Burst below one tick's worth is raised to it.
	p = NewPacer(10_000, time.Millisecond, 0)
	if p.Burst() != 10 {
		t.Fatalf("burst %d", p.Burst())
	}
	p = NewPacer(1500, time.Millisecond, 0)
	if p.Burst() != 2 {
		t.Fatalf("burst %d", p.Burst())
	}
	// Absurd inputs are clamped.
	p = NewPacer(math.MaxUint64, time.Hour, math.MaxUint64)
	if n := p.Allow(0); n != maxPacerPPS {
		t.Fatalf("clamped first tick: %d", n)
	}
	p = NewPacer(1000, time.Nanosecond, 0)
	if got := drain(p, 0, int64(time.Microsecond), 2*sec); got[0] != 1000 || got[1] != 1000 {
		t.Fatalf("1 µs tick: %v", got)
	}
}
