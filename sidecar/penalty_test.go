package sidecar

import (
	"net/netip"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
)

// TestPenaltyRows: penalties become rows numbered in the one sequence of
// completed rows, in the loop's order, so applying the rows to a fresh
// model rebuilds the loop's model exactly; a CompletedOnly hand-off, or a
// policy that does not learn, gets completed rows only.
func TestPenaltyRows(t *testing.T) {
	cases := []struct {
		name          string
		completedOnly bool
		policy        Policy
		wantKinds     []metastore.RowKind
	}{
		{"penalties on", false, PolicyModel, []metastore.RowKind{metastore.RowUnparsable, metastore.RowSigverifyFailed, metastore.RowCompleted}},
		{"completed only", true, PolicyModel, []metastore.RowKind{metastore.RowCompleted}},
		{"fee-only policy", false, PolicyFeeOnly, []metastore.RowKind{metastore.RowCompleted}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			handoff := metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 8, Batches: 4, CompletedOnly: tc.completedOnly})
			h := newHarness(t, func(c *Config) {
				c.Handoff = handoff
				c.Policy = tc.policy
			})
			good := tx{payer: payerN(1), sig: sigN(1), limit: 10_000, price: 5, nonce: 1}
			p := good.packet(t, ipN(1))
			garbage := p
			garbage.SetData([]byte{0, 1, 2}) // zero signatures: a parse failure
			garbage.SetAddr(ipN(66))
			h.tpu.Push(&garbage)
			h.tpu.Push(&p)
			h.tpu.Sync()
			failed := good.packet(t, netip.MustParseAddr("2001:db8:1:2::7"))
			failed.SetFlags(channels.FlagDiscard)
			h.sig.Push(&failed)
			h.sig.Sync()
			var m channels.RemainingMeta
			m.Set(score.PacketHash(0x5eed, &p), 5000)
			h.sch.Push(&m)
			h.sch.Sync()

			wall := time.Now().UnixNano()
			h.s.step(0, wall)
			handoff.Flush()
			rows := handoff.Collect(nil)

			if len(rows) != len(tc.wantKinds) {
				t.Fatalf("%d rows, want %d: %+v", len(rows), len(tc.wantKinds), rows)
			}
			for i, r := range rows {
				if r.Kind != tc.wantKinds[i] || r.Seq != uint64(i+1) || r.ObservedAt != wall || r.Seed != 0x5eed {
					t.Fatalf("row %d: kind %v seq %d at %d seed %#x; want %v, %d, %d, 0x5eed", i, r.Kind, r.Seq, r.ObservedAt, r.Seed, tc.wantKinds[i], i+1, wall)
				}
				switch r.Kind {
				case metastore.RowUnparsable:
					if r.Channel != 0 || r.Addr() != ipN(66) || r.Fee != 0 || r.Signer != ([32]byte{}) {
						t.Fatalf("unparsable row: %+v", r)
					}
				case metastore.RowSigverifyFailed:
					if r.Channel != metastore.SigverifyChannel || r.Addr() != netip.MustParseAddr("2001:db8:1:2::7") {
						t.Fatalf("sigverify row: %+v", r)
					}
				}
			}
			c := &h.s.snap
			wantPenalties := uint64(len(tc.wantKinds) - 1)
			if c.Counters[RowsOffered] != uint64(len(rows)) || c.Counters[PenaltyRows] != wantPenalties {
				t.Fatalf("rows offered %d, penalty rows %d; want %d, %d", c.Counters[RowsOffered], c.Counters[PenaltyRows], len(rows), wantPenalties)
			}
			if tc.policy != PolicyModel {
				return
			}
			replayed := model.New(h.s.cfg.Model)
			for i := range rows {
				rows[i].Apply(replayed)
			}
			diff := model.Diff(h.s.model, replayed, 0)
			if tc.completedOnly == (len(diff) == 0) {
				t.Fatalf("completed only %v: model rebuilt from the rows differs in %d ways: %v", tc.completedOnly, len(diff), diff)
			}
		})
	}
}
