package sim

import (
	"fmt"

	"github.com/solqos/qos/channels"
)

// Traffic generates the packets of a configuration's agents in the order
// Run produces them, as fast as asked, with no channels, clock or
// bookkeeping: a packet source for benchmarks of the sidecar that need the
// story's mix (duplicates, unparsable packets, bad signatures, sybil
// addresses) faster than in real time.
type Traffic struct {
	g *generator
}

// NewTraffic returns the traffic of cfg (cfg.Seed decides the packets).
func NewTraffic(cfg Config) (*Traffic, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("simulator config: %w", err)
	}
	g, err := newGenerator(&cfg)
	if err != nil {
		return nil, err
	}
	return &Traffic{g: g}, nil
}

// Next writes the next packet into p and returns the index of its channel
// in tpu, fwd, re1, re2 order. It does not allocate.
func (t *Traffic) Next(p *channels.Packet) int {
	return int(t.g.next(p).channel)
}
