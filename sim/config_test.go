package sim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigStory(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var honest, spammer float64
	ipv6 := false
	for _, a := range c.Agents {
		if !a.Attacker {
			honest += a.PPS
		} else if a.Name == "spammer" {
			spammer = a.PPS
		}
		ips, _ := a.addrs()
		for _, ip := range ips {
			ipv6 = ipv6 || ip.Is6()
		}
	}
	if spammer < 10*honest {
		t.Errorf("spammer %v packets/s, honest %v: want ≥ 10×", spammer, honest)
	}
	if honest <= float64(c.SigverifyPPS) {
		t.Errorf("honest traffic %v does not exceed sigverify's %d: ranking would not matter", honest, c.SigverifyPPS)
	}
	if !ipv6 {
		t.Error("no IPv6 agent")
	}
}

// TestConfigJSON: marshalling and reading back gives the same config;
// LoadConfig applies a partial file over the defaults.
func TestConfigJSON(t *testing.T) {
	c := DefaultConfig()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"slot_duration": "400ms"`) {
		t.Errorf("durations not written as strings:\n%s", b)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n%+v\n%+v", back, c)
	}
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := LoadConfig(write("partial.json", `{"duration": "7s", "seed": 9, "sigverify_pps": 1234}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Duration != 7*time.Second || got.Seed != 9 || got.SigverifyPPS != 1234 || got.Warmup != c.Warmup || len(got.Agents) != len(c.Agents) {
		t.Errorf("partial config: %+v", got)
	}
	got, err = LoadConfig(write("agents.json", `{"agents": [{"name": "solo", "channel": "re1", "pps": 10, "ips": ["::ffff:1.2.3.4"], "signers": 1,
		"mix": [{"kind": "valid", "weight": 1, "price_median": 5, "cu_min": 1, "cu_max": 2}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Agents) != 1 || got.Agents[0].Name != "solo" {
		t.Errorf("agents replaced: %+v", got.Agents)
	}
	if ips, _ := got.Agents[0].addrs(); !ips[0].Is4() {
		t.Errorf("IPv4-mapped address not unmapped: %v", ips[0])
	}
	for name, body := range map[string]string{
		"unknown field": `{"durration": "1s"}`,
		"bad duration":  `{"warmup": "soon"}`,
		"invalid":       `{"warmup": "10s"}`,
		"not json":      `{`,
	} {
		if _, err := LoadConfig(write(name+".json", body)); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestValidate lists configurations Validate must refuse, each with the
// field its error names.
func TestValidate(t *testing.T) {
	f := func(field string, edit func(c *Config)) {
		t.Helper()
		c := DefaultConfig()
		edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
	f("duration", func(c *Config) { c.Duration = 0 })
	f("warmup", func(c *Config) { c.Warmup = c.Duration })
	f("slot_duration", func(c *Config) { c.SlotDuration = 0 })
	f("slot_cu_budget", func(c *Config) { c.SlotCUBudget = 0 })
	f("sigverify_burst", func(c *Config) { c.SigverifyBurst = 0 })
	f("bucket", func(c *Config) { c.Bucket = time.Nanosecond })
	f("agents", func(c *Config) { c.Agents = nil })
	f("name", func(c *Config) { c.Agents[0].Name = "" })
	f("used twice", func(c *Config) { c.Agents[1].Name = c.Agents[0].Name })
	f("channel", func(c *Config) { c.Agents[0].Channel = "udp" })
	f("pps", func(c *Config) { c.Agents[0].PPS = -1 })
	f("signers", func(c *Config) { c.Agents[0].Signers = 0 })
	f("v0_share", func(c *Config) { c.Agents[0].V0Share = 2 })
	f("mix", func(c *Config) { c.Agents[0].Mix = nil })
	f("kind", func(c *Config) { c.Agents[0].Mix[0].Kind = "evil" })
	f("weight", func(c *Config) { c.Agents[0].Mix[0].Weight = -1 })
	f("positive", func(c *Config) { c.Agents[0].Mix[0].Weight = 0 })
	f("original", func(c *Config) { c.Agents[3].Mix = []MixConfig{{Kind: KindDuplicate, Weight: 1}} })
	f("cu_min", func(c *Config) { c.Agents[0].Mix[0].CUMin = 300_000 })
	f("price_median", func(c *Config) { c.Agents[0].Mix[0].PriceMedian = 1e13 })
	f("ips", func(c *Config) { c.Agents[0].IPCount = 0 })
	f("ip_base", func(c *Config) { c.Agents[0].IPBase = "nonsense" })
	f("255.255.255.255", func(c *Config) { c.Agents[0].IPBase = "255.255.255.254" })
	f("already belongs", func(c *Config) { c.Agents[3].IPs = []string{"10.1.0.2"} })
	f("zones", func(c *Config) { c.Agents[3].IPs = []string{"fe80::1%eth0"} })
	f("signers", func(c *Config) {
		for i := range c.Agents {
			c.Agents[i].Signers = maxSigners
		}
	})
}

// TestScenarios: every scenario of the library is valid, named once, and
// builds a generator.
func TestScenarios(t *testing.T) {
	names := slices.Clone(ScenarioNames())
	slices.Sort(names)
	if len(slices.Compact(names)) != len(Scenarios()) {
		t.Fatalf("names used twice: %v", ScenarioNames())
	}
	for _, s := range Scenarios() {
		c := s.Config()
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if _, err := newGenerator(&c); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		got, err := LookupScenario(s.Name)
		if err != nil || got.Name != s.Name {
			t.Errorf("lookup %s: %v", s.Name, err)
		}
	}
	if _, err := LookupScenario("nope"); err == nil || !strings.Contains(err.Error(), "sybil-100k") {
		t.Errorf("unknown scenario: %v", err)
	}
}
