package sim

import (
	"fmt"
	"strings"
	"time"
)

// Scenario is a named traffic story of the library: what `qos-cli demo
// --scenario NAME` plays. Every scenario is meant for the demo's default
// 8 s with a 3 s warm-up (agents that join or change behaviour do so at
// fixed times within it) and sigverify at 5 000 packets/s.
type Scenario struct {
	Name        string
	Description string
	Config      func() Config
}

// Scenario durations: the demo's defaults, which the phases assume.
const (
	scenarioDuration = 8 * time.Second
	scenarioWarmup   = 3 * time.Second
)

// Scenarios returns the library, in the order a full table lists it.
func Scenarios() []Scenario {
	return []Scenario{
		{"demo", "the demo story: three honest senders, a spammer IP and a 2 048-IP sybil", demoScenario},
		{"honest-overload", "twelve honest senders, 2.4x sigverify, fee per CU spread over three orders of magnitude; no attacker", honestOverload},
		{"farm-then-flood", "an IP sends well-paying valid transactions for 3 s, then floods bad signatures claiming higher fees", farmThenFlood},
		{"rotation-bad", "one IP signs every transaction with a fresh fee payer, all bad signatures claiming top fees", rotationBad},
		{"rotation-unpaid", "one IP sends valid 1.3 M-CU transactions from fresh fee payers that cannot pay, priced near the top", rotationUnpaid},
		{"sybil-10k", "demo honest traffic and spammer, a sybil of 10 000 IPs sending bad signatures claiming top fees", sybil(10_000)},
		{"sybil-100k", "the same with 100 000 sybil IPs", sybil(100_000)},
		{"sybil-1m", "the same with 1 000 000 sybil IPs (each seen about once)", sybil(1_000_000)},
		{"newcomer-crowd", "established senders for 3 s, then 3 000 new IPs with fresh fee payers paying 3x the top fee per CU", newcomerCrowd},
		{"noisy-honest", "honest overload where the four best-paying senders send 1 % bad signatures", noisyHonest},
		{"nat", "three honest senders behind one NAT address, with a host sending 2 % bad signatures behind it, plus other honest senders", natScenario},
		{"impersonation", "an attacker names the top sender's fee payers with bad signatures claiming higher fees", impersonation},
		{"low-load", "honest senders at 40 % of sigverify's capacity: everything should pass", lowLoad},
	}
}

// ScenarioNames lists the library's names.
func ScenarioNames() []string {
	var n []string
	for _, s := range Scenarios() {
		n = append(n, s.Name)
	}
	return n
}

// LookupScenario returns the scenario called name.
func LookupScenario(name string) (Scenario, error) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, nil
		}
	}
	return Scenario{}, fmt.Errorf("no scenario %q; known: %s (see --list-scenarios)", name, strings.Join(ScenarioNames(), ", "))
}

// base is the demo's capacities with no agents, sized for scenarios.
func base() Config {
	c := DefaultConfig()
	c.Duration, c.Warmup = scenarioDuration, scenarioWarmup
	c.Agents = nil
	return c
}

func valid(median, sigma float64, cuMin, cuMax uint32) MixConfig {
	return MixConfig{Kind: KindValid, Weight: 1, PriceMedian: median, PriceSigma: sigma, CUMin: cuMin, CUMax: cuMax}
}

func demoScenario() Config {
	c := DefaultConfig()
	c.Duration, c.Warmup = scenarioDuration, scenarioWarmup
	return c
}

// honestAgents returns n honest senders on tpu, each with 2 IPs in
// 10.<i>.0.0/16 and 8 fee payers, paying fee per CU median from 1 000 to
// about 5 000 000 micro-lamports (geometric), pps each.
func honestAgents(n int, pps float64) []AgentConfig {
	var out []AgentConfig
	for i := 0; i < n; i++ {
		median := 1000 * pow(2.1, i)
		out = append(out, AgentConfig{Name: fmt.Sprintf("honest-%02d", i), Channel: "tpu", PPS: pps,
			IPBase: fmt.Sprintf("10.%d.0.1", 10+i), IPCount: 2, Signers: 8, V0Share: 0.3,
			Mix: []MixConfig{valid(median, 0.8, 5_000, 200_000)}})
	}
	return out
}

func pow(b float64, n int) float64 {
	x := 1.0
	for range n {
		x *= b
	}
	return x
}

func honestOverload() Config {
	c := base()
	c.Agents = honestAgents(12, 1000)
	return c
}

func farmThenFlood() Config {
	c := base()
	c.Agents = honestAgents(8, 1000)
	farm := AgentConfig{Name: "farmer", Channel: "tpu", PPS: 500, IPs: []string{"198.51.100.20"}, Signers: 8, SharedIPs: true,
		Mix: []MixConfig{valid(200_000, 0.5, 5_000, 100_000)}, Stop: Offset(3 * time.Second)}
	flood := AgentConfig{Name: "flooder", Attacker: true, Channel: "tpu", PPS: 30_000, IPs: []string{"198.51.100.20"}, Signers: 8, SharedIPs: true,
		Mix:   []MixConfig{{Kind: KindBadSignature, Weight: 1, PriceMedian: 20_000_000, PriceSigma: 0.5, CUMin: 5_000, CUMax: 100_000}},
		Start: Offset(3 * time.Second)}
	c.Agents = append(c.Agents, farm, flood)
	return c
}

func rotationBad() Config {
	c := base()
	c.Agents = append(honestAgents(8, 1000), AgentConfig{Name: "rotator", Attacker: true, Channel: "tpu", PPS: 30_000,
		IPs: []string{"198.51.100.30"}, Signers: 1, FreshSigners: true,
		Mix: []MixConfig{{Kind: KindBadSignature, Weight: 1, PriceMedian: 20_000_000, PriceSigma: 0.5, CUMin: 5_000, CUMax: 100_000}}})
	return c
}

func rotationUnpaid() Config {
	c := base()
	c.Agents = append(honestAgents(8, 1000), AgentConfig{Name: "unpaid-rotator", Attacker: true, Channel: "tpu", PPS: 20_000,
		IPs: []string{"198.51.100.40"}, Signers: 1, FreshSigners: true,
		Mix: []MixConfig{{Kind: KindUnpaid, Weight: 1, PriceMedian: 1_000_000, PriceSigma: 0.3, CUMin: 1_300_000, CUMax: 1_300_000}}})
	return c
}

func sybil(n int) func() Config {
	return func() Config {
		c := demoScenario()
		for i := range c.Agents {
			if c.Agents[i].Name == "sybil" {
				c.Agents[i].IPBase = "100.64.0.1"
				c.Agents[i].IPCount = n
				c.Agents[i].PPS = 20_000
				c.Agents[i].Mix = []MixConfig{{Kind: KindBadSignature, Weight: 0.8, PriceMedian: 1_500_000, PriceSigma: 1.0, CUMin: 20_000, CUMax: 200_000},
					valid(2, 0.5, 200_000, 1_400_000)}
				c.Agents[i].Mix[1].Weight = 0.2
			}
		}
		return c
	}
}

func newcomerCrowd() Config {
	c := base()
	c.Agents = append(honestAgents(8, 1000), AgentConfig{Name: "crowd", Channel: "tpu", PPS: 3000,
		IPBase: "172.16.0.1", IPCount: 3000, Signers: 1, FreshSigners: true, V0Share: 0.3,
		Mix:   []MixConfig{valid(3*1000*pow(2.1, 7), 0.5, 5_000, 200_000)},
		Start: Offset(3 * time.Second)})
	return c
}

func noisyHonest() Config {
	c := honestOverload()
	n := len(c.Agents)
	for i := n - 4; i < n; i++ {
		a := &c.Agents[i]
		bad := a.Mix[0]
		bad.Kind, bad.Weight = KindBadSignature, 0.01
		a.Mix[0].Weight = 0.99
		a.Mix = append(a.Mix, bad)
	}
	return c
}

func natScenario() Config {
	c := base()
	c.Agents = honestAgents(6, 1000)
	for i, med := range []float64{2_000_000, 1_000_000, 500_000} {
		c.Agents = append(c.Agents, AgentConfig{Name: fmt.Sprintf("nat-user-%d", i), Channel: "tpu", PPS: 600,
			IPs: []string{"203.0.113.9"}, SharedIPs: true, Signers: 4, Mix: []MixConfig{valid(med, 0.8, 5_000, 200_000)}})
	}
	c.Agents = append(c.Agents, AgentConfig{Name: "nat-bad-host", Attacker: true, Channel: "tpu", PPS: 40,
		IPs: []string{"203.0.113.9"}, SharedIPs: true, Signers: 1,
		Mix: []MixConfig{{Kind: KindBadSignature, Weight: 1, PriceMedian: 2_000_000, PriceSigma: 0.5, CUMin: 5_000, CUMax: 200_000}}})
	return c
}

func impersonation() Config {
	c := base()
	c.Agents = append(honestAgents(8, 1000), AgentConfig{Name: "impersonator", Attacker: true, Channel: "tpu", PPS: 20_000,
		IPBase: "198.51.100.64", IPCount: 16, Signers: 1,
		Mix: []MixConfig{{Kind: KindImpersonate, Weight: 1, Victim: "honest-07", PriceMedian: 20_000_000, PriceSigma: 0.5, CUMin: 5_000, CUMax: 100_000}}})
	return c
}

func lowLoad() Config {
	c := base()
	c.Agents = honestAgents(4, 500)
	return c
}
