package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"time"

	"github.com/solqos/qos/channels"
)

// Config is everything a Run needs. DefaultConfig tells the demo's story;
// LoadConfig reads the same fields from a JSON file (durations as strings
// such as "400ms").
type Config struct {
	// Channels says where the channel files live (prefix, directory, huge
	// pages). It is not read from JSON: the CLI sets it from flags.
	Channels channels.Options `json:"-"`

	// Seed makes the traffic: the same seed gives the same packets.
	Seed int64 `json:"seed"`
	// Duration is how long traffic is produced; Warmup is the start of
	// the window over which the attacker share of output is measured.
	Duration time.Duration `json:"-"`
	Warmup   time.Duration `json:"-"`
	// SlotDuration is the mock scheduler's slot; SlotCUBudget the compute
	// units it may include per slot.
	SlotDuration time.Duration `json:"-"`
	SlotCUBudget uint64        `json:"slot_cu_budget"`
	// SigverifyPPS is the mock sigverify's capacity in packets per second
	// (0 = unlimited). Packets beyond it (with a burst of SigverifyBurst)
	// are dropped and counted. Run the sidecar with --target-pps equal to
	// it.
	SigverifyPPS   uint64        `json:"sigverify_pps"`
	SigverifyBurst time.Duration `json:"-"`
	// ExecBaseNanos + ExecNanosPerCU × CUs is the execution time reported
	// for an included transaction.
	ExecBaseNanos  uint64 `json:"exec_base_ns"`
	ExecNanosPerCU uint64 `json:"exec_ns_per_cu"`
	// HashSeed is the packet-hash seed; 0 means read it from sch_to_qos
	// metadata, waiting up to SeedWait for the sidecar to write it.
	HashSeed uint64        `json:"hash_seed"`
	SeedWait time.Duration `json:"-"`
	// Bucket is the width of the time series (agent shares, packets/s).
	Bucket time.Duration `json:"-"`

	Agents []AgentConfig `json:"agents"`
}

// AgentConfig describes one traffic source.
type AgentConfig struct {
	Name string `json:"name"`
	// Attacker marks the agents whose output share is reported as spam.
	Attacker bool `json:"attacker"`
	// Channel is one of tpu, fwd, re1, re2.
	Channel string `json:"channel"`
	// PPS is the agent's packet rate (Poisson arrivals).
	PPS float64 `json:"pps"`
	// IPs lists source addresses; IPBase and IPCount add a generated range
	// (IPv4: consecutive addresses; IPv6: consecutive /64 prefixes, since
	// the sidecar keys IPv6 by /64).
	IPs     []string `json:"ips,omitempty"`
	IPBase  string   `json:"ip_base,omitempty"`
	IPCount int      `json:"ip_count,omitempty"`
	// Signers is the number of distinct fee payers the agent signs with.
	Signers int `json:"signers"`
	// V0Share is the fraction of v0 (versus legacy) transactions.
	V0Share float64 `json:"v0_share"`
	// Mix lists what the agent sends, drawn by weight per packet.
	Mix []MixConfig `json:"mix"`

	// Start and Stop bound when the agent sends (since the run's start;
	// Stop 0 = until the end): an agent that joins mid-run, or one phase
	// of a sender whose behaviour changes (several agents sharing IPs,
	// each with its own window).
	Start Offset `json:"start,omitempty"`
	Stop  Offset `json:"stop,omitempty"`
	// SharedIPs lets the agent use addresses another agent uses too: a
	// NAT, or the phases of one sender.
	SharedIPs bool `json:"shared_ips,omitempty"`
	// FreshSigners gives every transaction a new fee payer, never seen
	// before (Signers then only sizes the templates).
	FreshSigners bool `json:"fresh_signers,omitempty"`
}

// Offset is a duration that reads and writes JSON as a string such as
// "1.5s".
type Offset time.Duration

// MarshalJSON writes the offset as a duration string.
func (o Offset) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(o).String()) }

// UnmarshalJSON reads a duration string.
func (o *Offset) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"1.5s\": %w", err)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*o = Offset(d)
	return nil
}

// Packet kinds of a MixConfig.
const (
	KindValid        = "valid"         // correctly signed transaction
	KindBadSignature = "bad_signature" // parses, claims its fee, fails sigverify
	KindDuplicate    = "duplicate"     // byte-identical resend of a recent packet of the agent
	KindUnparsable   = "unparsable"    // fails the transaction parser
	KindImpersonate  = "impersonate"   // names Victim's fee payer, fails sigverify
	KindUnpaid       = "unpaid"        // correctly signed, but its fee payer cannot pay: never included
)

// MixConfig is one kind of packet an agent sends.
type MixConfig struct {
	Kind   string  `json:"kind"`
	Weight float64 `json:"weight"`
	// PriceMedian and PriceSigma give the log-normal CU price in
	// micro-lamports per CU (median e^μ, σ of the underlying normal).
	PriceMedian float64 `json:"price_median,omitempty"`
	PriceSigma  float64 `json:"price_sigma,omitempty"`
	// CUMin..CUMax (uniform) is the requested compute-unit limit.
	CUMin uint32 `json:"cu_min,omitempty"`
	CUMax uint32 `json:"cu_max,omitempty"`
	// Victim names the agent whose fee payers an impersonate entry uses.
	Victim string `json:"victim,omitempty"`
}

// DefaultConfig returns the demo's story. Three honest agents (7 000
// packets/s together, more than sigverify's 5 000) pay either high
// priority fees (two agents, one over IPv6 on the forward port) or low
// ones; a spammer IP sends 80 000 packets/s of duplicates, garbage,
// invalid signatures claiming higher fees than the honest ones, and valid
// but nearly free transactions asking for many compute units; a sybil
// rotates 2 048 IPs sending invalid high-fee claims and nearly free valid
// transactions.
//
// Fee per CU alone puts the invalid claims first and fills sigverify with
// them; FIFO passes mostly spam; a sidecar that learns which IPs fail
// sigverify hands sigverify the honest traffic.
func DefaultConfig() Config {
	honestHigh := []MixConfig{{Kind: KindValid, Weight: 1, PriceMedian: 1_000_000, PriceSigma: 0.8, CUMin: 20_000, CUMax: 200_000}}
	nearlyFree := MixConfig{Kind: KindValid, PriceMedian: 2, PriceSigma: 0.5, CUMin: 200_000, CUMax: 1_400_000}
	invalidClaim := MixConfig{Kind: KindBadSignature, PriceMedian: 1_500_000, PriceSigma: 1.0, CUMin: 20_000, CUMax: 200_000}
	spamValid, spamBad, sybilValid, sybilBad := nearlyFree, invalidClaim, nearlyFree, invalidClaim
	spamValid.Weight, spamBad.Weight = 0.30, 0.30
	sybilValid.Weight, sybilBad.Weight = 0.4, 0.6
	return Config{
		Seed:           1,
		Duration:       5 * time.Second,
		Warmup:         3 * time.Second,
		SlotDuration:   400 * time.Millisecond,
		SlotCUBudget:   48_000_000,
		SigverifyPPS:   5000,
		SigverifyBurst: 100 * time.Millisecond,
		ExecBaseNanos:  2000,
		ExecNanosPerCU: 5,
		SeedWait:       30 * time.Second,
		Bucket:         500 * time.Millisecond,
		Agents: []AgentConfig{
			{Name: "honest-high", Channel: "tpu", PPS: 1500, IPBase: "10.1.0.1", IPCount: 4, Signers: 8, V0Share: 0.5, Mix: honestHigh},
			{Name: "honest-high-v6", Channel: "fwd", PPS: 1500, IPBase: "2001:db8:100::1", IPCount: 4, Signers: 8, V0Share: 0.5, Mix: honestHigh},
			{Name: "honest-low", Channel: "tpu", PPS: 4000, IPBase: "10.2.0.1", IPCount: 8, Signers: 32, V0Share: 0.3,
				Mix: []MixConfig{{Kind: KindValid, Weight: 1, PriceMedian: 10_000, PriceSigma: 1.0, CUMin: 5_000, CUMax: 100_000}}},
			{Name: "spammer", Attacker: true, Channel: "tpu", PPS: 80_000, IPs: []string{"198.51.100.7"}, Signers: 4, V0Share: 0.2,
				Mix: []MixConfig{{Kind: KindDuplicate, Weight: 0.25}, {Kind: KindUnparsable, Weight: 0.15}, spamBad, spamValid}},
			{Name: "sybil", Attacker: true, Channel: "tpu", PPS: 10_000, IPBase: "100.64.0.1", IPCount: 2048, Signers: 64, V0Share: 0.2,
				Mix: []MixConfig{sybilBad, sybilValid}},
		},
	}
}

// Limits that keep a configuration within what a Run preallocates.
const (
	maxAgents       = 1 << 12
	maxIPsPerAgent  = 1 << 20
	maxSigners      = 1 << 14
	maxTotalSigners = 1 << 16 // 2 templates of ~300 bytes each
	maxTotalPPS     = 20_000_000
	maxRunDuration  = 24 * time.Hour
	maxSeriesPoints = 1 << 16
)

// Validate checks the configuration and returns an error naming the first
// field that is wrong.
func (c *Config) Validate() error {
	switch {
	case c.Duration <= 0 || c.Duration > maxRunDuration:
		return fmt.Errorf("duration %v: must be in (0, %v]", c.Duration, maxRunDuration)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("warmup %v: must be in [0, duration %v)", c.Warmup, c.Duration)
	case c.SlotDuration <= 0 || c.SlotDuration > time.Minute:
		return fmt.Errorf("slot_duration %v: must be in (0, 1m]", c.SlotDuration)
	case c.SlotCUBudget == 0:
		return errors.New("slot_cu_budget: must be positive")
	case c.SigverifyPPS > 0 && c.SigverifyBurst <= 0:
		return fmt.Errorf("sigverify_burst %v: must be positive when sigverify_pps is set", c.SigverifyBurst)
	case c.Bucket <= 0 || int64(c.Duration/c.Bucket) > maxSeriesPoints:
		return fmt.Errorf("bucket %v: must be positive and give at most %d points over %v", c.Bucket, maxSeriesPoints, c.Duration)
	case len(c.Agents) == 0 || len(c.Agents) > maxAgents:
		return fmt.Errorf("agents: need 1..%d, have %d", maxAgents, len(c.Agents))
	}
	var total float64
	signers := 0
	names := make(map[string]bool, len(c.Agents))
	type ownerOf struct {
		name   string
		shared bool
	}
	owner := make(map[netip.Addr]ownerOf)
	for i := range c.Agents {
		a := &c.Agents[i]
		if err := a.validate(); err != nil {
			return fmt.Errorf("agent %d (%q): %w", i, a.Name, err)
		}
		if names[a.Name] {
			return fmt.Errorf("agent %d: name %q used twice", i, a.Name)
		}
		names[a.Name] = true
		total += a.PPS
		signers += a.Signers
		ips, err := a.addrs()
		if err != nil {
			return fmt.Errorf("agent %d (%q): %w", i, a.Name, err)
		}
		for _, ip := range ips {
			if o, ok := owner[ip]; ok && !(a.SharedIPs && o.shared) {
				return fmt.Errorf("agent %d (%q): address %v already belongs to %q (set shared_ips on both to share it)", i, a.Name, ip, o.name)
			}
			owner[ip] = ownerOf{a.Name, a.SharedIPs}
		}
		if time.Duration(a.Stop) != 0 && a.Stop <= a.Start || a.Start < 0 {
			return fmt.Errorf("agent %d (%q): start %v / stop %v: want 0 ≤ start < stop (stop 0 = the end)", i, a.Name, time.Duration(a.Start), time.Duration(a.Stop))
		}
	}
	for i := range c.Agents {
		for j, m := range c.Agents[i].Mix {
			if m.Kind == KindImpersonate && !names[m.Victim] {
				return fmt.Errorf("agent %d (%q): mix %d: victim %q: no such agent", i, c.Agents[i].Name, j, m.Victim)
			}
		}
	}
	if signers > maxTotalSigners {
		return fmt.Errorf("agents: %d signers in total, more than %d", signers, maxTotalSigners)
	}
	if total > maxTotalPPS {
		return fmt.Errorf("agents: %.0f packets/s in total, more than %d", total, maxTotalPPS)
	}
	return nil
}

func (a *AgentConfig) validate() error {
	switch {
	case a.Name == "":
		return errors.New("name: empty")
	case channelIndex(a.Channel) < 0:
		return fmt.Errorf("channel %q: want tpu, fwd, re1 or re2", a.Channel)
	case !(a.PPS > 0) || math.IsInf(a.PPS, 0):
		return fmt.Errorf("pps %v: must be positive", a.PPS)
	case a.Signers < 1 || a.Signers > maxSigners:
		return fmt.Errorf("signers %d: must be in 1..%d", a.Signers, maxSigners)
	case !(a.V0Share >= 0 && a.V0Share <= 1):
		return fmt.Errorf("v0_share %v: must be in [0, 1]", a.V0Share)
	case a.IPCount < 0 || a.IPCount+len(a.IPs) > maxIPsPerAgent:
		return fmt.Errorf("ip_count %d: must be in 0..%d", a.IPCount, maxIPsPerAgent)
	case len(a.Mix) == 0:
		return errors.New("mix: empty")
	}
	var sum float64
	origins := 0
	for j, m := range a.Mix {
		if !(m.Weight >= 0) || math.IsInf(m.Weight, 0) {
			return fmt.Errorf("mix %d: weight %v must be a non-negative number", j, m.Weight)
		}
		sum += m.Weight
		switch m.Kind {
		case KindDuplicate:
			continue
		case KindValid, KindBadSignature, KindUnparsable, KindUnpaid, KindImpersonate:
		default:
			return fmt.Errorf("mix %d: kind %q: want %s, %s, %s, %s, %s or %s", j, m.Kind,
				KindValid, KindBadSignature, KindDuplicate, KindUnparsable, KindImpersonate, KindUnpaid)
		}
		if (m.Kind == KindImpersonate) != (m.Victim != "") {
			return fmt.Errorf("mix %d: victim %q: an impersonate entry needs a victim, and only it", j, m.Victim)
		}
		origins++
		if !(m.PriceMedian >= 0) || m.PriceMedian > 1e12 || !(m.PriceSigma >= 0) || m.PriceSigma > 10 {
			return fmt.Errorf("mix %d: price_median %v / price_sigma %v: want median in [0, 1e12], sigma in [0, 10]", j, m.PriceMedian, m.PriceSigma)
		}
		if m.CUMin > m.CUMax || m.CUMax > maxComputeUnitLimit {
			return fmt.Errorf("mix %d: cu_min %d / cu_max %d: want cu_min ≤ cu_max ≤ %d", j, m.CUMin, m.CUMax, maxComputeUnitLimit)
		}
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		return errors.New("mix: weights must add up to a positive number")
	}
	if origins == 0 {
		return errors.New("mix: a duplicate needs an original; add a valid, bad_signature or unparsable entry")
	}
	if a.IPCount == 0 && len(a.IPs) == 0 {
		return errors.New("ips: give ips or ip_base and ip_count")
	}
	return nil
}

// addrs returns the agent's source addresses: IPs, then the generated
// range. IPv4-mapped IPv6 addresses are unmapped.
func (a *AgentConfig) addrs() ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(a.IPs)+a.IPCount)
	for _, s := range a.IPs {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("ips: %w", err)
		}
		if ip.Zone() != "" {
			return nil, fmt.Errorf("ips: %v: zones are not allowed", ip)
		}
		out = append(out, ip.Unmap())
	}
	if a.IPCount == 0 {
		return out, nil
	}
	base, err := netip.ParseAddr(a.IPBase)
	if err != nil {
		return nil, fmt.Errorf("ip_base: %w", err)
	}
	base = base.Unmap()
	if base.Zone() != "" {
		return nil, fmt.Errorf("ip_base %v: zones are not allowed", base)
	}
	b16 := base.As16()
	hi := uint64(0)
	lo := uint64(0)
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b16[i])
		lo = lo<<8 | uint64(b16[8+i])
	}
	for i := 0; i < a.IPCount; i++ {
		var ip netip.Addr
		if base.Is4() {
			v := uint32(lo) + uint32(i)
			if v < uint32(lo) {
				return nil, fmt.Errorf("ip_base %v + ip_count %d: runs past 255.255.255.255", base, a.IPCount)
			}
			ip = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		} else {
			h := hi + uint64(i)
			if h < hi {
				return nil, fmt.Errorf("ip_base %v + ip_count %d: runs past the last /64", base, a.IPCount)
			}
			var b [16]byte
			for k := 0; k < 8; k++ {
				b[k] = byte(h >> (56 - 8*k))
				b[8+k] = byte(lo >> (56 - 8*k))
			}
			ip = netip.AddrFrom16(b)
		}
		out = append(out, ip)
	}
	return out, nil
}

// channelIndex maps an agent's channel name to its position in
// channels.Table (0..3), or -1.
func channelIndex(name string) int {
	switch name {
	case "tpu":
		return 0
	case "fwd":
		return 1
	case "re1":
		return 2
	case "re2":
		return 3
	}
	return -1
}

// jsonConfig is Config on the wire: durations are strings.
type jsonConfig struct {
	*plainConfig
	Duration       string `json:"duration"`
	Warmup         string `json:"warmup"`
	SlotDuration   string `json:"slot_duration"`
	SigverifyBurst string `json:"sigverify_burst"`
	SeedWait       string `json:"seed_wait"`
	Bucket         string `json:"bucket"`
}

type plainConfig Config

func (c *Config) durations() []*time.Duration {
	return []*time.Duration{&c.Duration, &c.Warmup, &c.SlotDuration, &c.SigverifyBurst, &c.SeedWait, &c.Bucket}
}

func (j *jsonConfig) strings() []*string {
	return []*string{&j.Duration, &j.Warmup, &j.SlotDuration, &j.SigverifyBurst, &j.SeedWait, &j.Bucket}
}

// MarshalJSON writes the configuration with durations as strings.
func (c Config) MarshalJSON() ([]byte, error) {
	j := jsonConfig{plainConfig: (*plainConfig)(&c)}
	for i, d := range c.durations() {
		*j.strings()[i] = d.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a configuration; fields that are absent keep their
// current values, so decoding over DefaultConfig() changes only what the
// file says.
func (c *Config) UnmarshalJSON(b []byte) error {
	j := jsonConfig{plainConfig: (*plainConfig)(c)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	names := []string{"duration", "warmup", "slot_duration", "sigverify_burst", "seed_wait", "bucket"}
	for i, s := range j.strings() {
		if *s == "" {
			continue
		}
		d, err := time.ParseDuration(*s)
		if err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
		*c.durations()[i] = d
	}
	return nil
}

// LoadConfig reads a JSON configuration file over DefaultConfig (absent
// fields keep their defaults; a present "agents" list replaces the
// default agents) and validates it.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read simulator config: %w", err)
	}
	c := DefaultConfig()
	c.Agents = nil
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("parse simulator config %s: %w", path, err)
	}
	if c.Agents == nil {
		c.Agents = DefaultConfig().Agents
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("simulator config %s: %w", path, err)
	}
	return c, nil
}
