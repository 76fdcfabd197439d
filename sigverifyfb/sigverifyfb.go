// Package sigverifyfb turns the validator's failed-sigverify records into
// model feedback: the source IP of each packet that failed signature
// verification, keyed the way the model keys it.
//
// Every record on sig_to_qos is a failure by the channel's contract (the
// validator writes only packets its sigverify rejected, normally with the
// DISCARD flag set); the flag is not required, so feedback does not depend
// on how a validator build marks the record.
package sigverifyfb

import (
	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
)

// Source returns the model key of the IP whose packet failed sigverify, and
// false when the record's address tag is neither IPv4 nor IPv6 (the caller
// counts and ignores it). It reads only the record's address.
func Source(p *channels.Packet) (model.IP, bool) {
	addr, ok := p.Addr()
	if !ok {
		return model.IP{}, false
	}
	return model.IPOf(addr), true
}
