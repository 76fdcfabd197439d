package sim

import (
	"testing"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
)

func TestTrafficForAgave(t *testing.T) {
	tr, err := NewTraffic(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var h [32]byte
	for i := range h {
		h[i] = 0xab
	}
	tr.SetBlockhash(h)
	if tr.Blockhash() != h {
		t.Fatal("Blockhash does not return what SetBlockhash set")
	}
	var sv Sigverify
	var p channels.Packet
	var v score.View
	seen := map[PacketKind]int{}
	for i := 0; i < 5000; i++ {
		d := tr.NextPacket(&p)
		data := p.Data()
		ok := sv.Verify(data)
		seen[d.Kind]++
		switch d.Kind {
		case PacketValid:
			if !ok {
				t.Fatalf("packet %d: valid packet fails mock sigverify", i)
			}
			if v.Parse(data) != score.OK {
				t.Fatalf("packet %d: valid packet does not parse", i)
			}
			if [32]byte(v.RecentBlockhash(data)) != h {
				t.Fatalf("packet %d: blockhash not the one set", i)
			}
			payer, ok := tr.Payer(d.Agent, d.Signer)
			if !ok || v.FeePayer(data) != payer {
				t.Fatalf("packet %d: payer %x, want %x", i, v.FeePayer(data), payer)
			}
			if v.V0() {
				var l score.Lookup
				it := v.Lookups()
				lut, _ := tr.LookupTable(d.Agent)
				if !it.Next(data, &l) || [32]byte(l.Key(data)) != lut {
					t.Fatalf("packet %d: lookup table is not LookupTable(%d)", i, d.Agent)
				}
			}
			bud, r := v.Budget(data, score.DefaultFeeParams())
			if r != score.OK || bud.Fee != d.Fee {
				t.Fatalf("packet %d: fee %d (%v), described %d", i, bud.Fee, r, d.Fee)
			}
		case PacketBadSignature, PacketUnparsable:
			if ok && !d.Duplicate {
				t.Fatalf("packet %d of kind %d passes sigverify", i, d.Kind)
			}
		}
	}
	if seen[PacketValid] == 0 || seen[PacketBadSignature] == 0 || seen[PacketUnparsable] == 0 {
		t.Fatalf("kinds seen %v", seen)
	}
	// Sign makes a transaction of one's own pass Verify.
	tr.NextPacket(&p)
	data := append([]byte(nil), p.Data()...)
	for {
		d := tr.NextPacket(&p)
		if d.Kind == PacketValid {
			data = append(data[:0], p.Data()...)
			break
		}
	}
	data[len(data)-1] ^= 1
	if sv.Verify(data) {
		t.Fatal("a modified transaction verifies")
	}
	if !sv.Sign(data) || !sv.Verify(data) {
		t.Fatal("Sign does not make the transaction verify")
	}
}
