package metastore

import (
	"math"
	"net/netip"
	"testing"

	"github.com/solqos/qos/admit"
	"github.com/solqos/qos/model"
)

func TestRowSpoolRoundTrip(t *testing.T) {
	f := func(r Row) {
		t.Helper()
		var b [RowSize]byte
		putRow(b[:], &r)
		var got Row
		getRow(b[:], &got, RowSize)
		if got != r && !(math.IsNaN(r.Value) && math.IsNaN(got.Value)) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
	f(Row{})
	f(testRow(1))
	f(testRow(5))
	max := testRow(2)
	max.Fee, max.CUs, max.CUPrice, max.ExecNanos, max.Hash, max.Seed, max.Seq = ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)
	max.ObservedAt = math.MinInt64
	max.Value = math.Inf(-1)
	max.Kind = RowUnparsable
	f(max)
	f(PenaltyRow(RowSigverifyFailed, 9, 1000, SigverifyChannel, testRow(3).IP, 42))
	pr := testRow(6)
	pr.Kind, pr.Channel, pr.Reason, pr.Slot, pr.CostUnits, pr.FeePayerBalance = RowPackResult, PackChannel, 68, 1<<40, 1234, ^uint64(0)
	f(pr)
}

// TestLegacyRowSize: a version 2 row (legacyRowSize bytes) reads with
// its kind and zero pack fields.
func TestLegacyRowSize(t *testing.T) {
	r := testRow(7)
	r.Kind = RowUnparsable
	var b [RowSize]byte
	putRow(b[:], &r)
	clear(b[131:]) // version 2 reserved these
	got := Row{Slot: 9, Reason: 3, CostUnits: 4, FeePayerBalance: 5}
	getRow(b[:legacyRowSize], &got, legacyRowSize)
	if got != r {
		t.Fatalf("legacy row:\n got %+v\nwant %+v", got, r)
	}
}

// TestSpoolVersion1RowsAreCompleted: version 1 wrote the kind byte as
// reserved zero, so its rows read as completed transactions.
func TestSpoolVersion1RowsAreCompleted(t *testing.T) {
	r := testRow(4)
	var b [RowSize]byte
	putRow(b[:], &r)
	clear(b[130:]) // what version 1 wrote there
	r.Kind = RowSigverifyFailed
	getRow(b[:], &r, RowSize)
	if r.Kind != RowCompleted {
		t.Fatalf("version 1 row read as kind %v", r.Kind)
	}
	for k := RowCompleted; k < numRowKinds; k++ {
		if !k.Valid() || k.String() == "unknown" || k.Penalty() != (k == RowSigverifyFailed || k == RowUnparsable) {
			t.Fatalf("kind %d: valid %v, name %s", k, k.Valid(), k)
		}
	}
	if numRowKinds.Valid() || numRowKinds.String() != "unknown" {
		t.Fatal("an unknown kind is valid")
	}
}

func TestCompletedRow(t *testing.T) {
	p := admit.Partial{ArrivedAt: 5, Channel: 2, Fee: 10, CUs: 20, CUPrice: 30, Score: 1.5}
	p.IP = netip.MustParseAddr("1.2.3.4").As16()
	p.Signer[3] = 9
	r := CompletedRow(&p, 77 /*hash*/, 42 /*seed*/, 1000 /*observedAt*/, 0 /*execNanos*/)
	want := Row{ObservedAt: 1000, Channel: 2, IP: p.IP, Signer: p.Signer, Fee: 10, CUs: 20, CUPrice: 30, Score: 1.5, Hash: 77, Seed: 42}
	if r != want {
		t.Fatalf("CompletedRow = %+v", r)
	}
	if r.Addr() != netip.MustParseAddr("1.2.3.4") {
		t.Fatalf("Addr = %v", r.Addr())
	}
	r = CompletedRow(&p, 77 /*hash*/, 42 /*seed*/, 1000 /*observedAt*/, 123 /*execNanos*/)
	if !r.Scheduled || r.ExecNanos != 123 {
		t.Fatal("executed row not scheduled")
	}
}

// TestPackRowApply: a pack-mode row teaches the model what the pack loop
// learnt from the same result (pack.Judge, pack.ModelObservation): an
// included one its fee per cost unit, a sender-caused refusal an unpaid
// claim, a scheduler-caused one nothing.
func TestPackRowApply(t *testing.T) {
	ip := netip.MustParseAddr("10.1.2.3").As16()
	f := func(reason uint8, costUnits uint64, wantLearn bool, wantPaid bool) {
		t.Helper()
		r := Row{Kind: RowPackResult, Channel: PackChannel, IP: ip, Fee: 50_000, CUs: 10_000, Reason: reason, CostUnits: costUnits, Slot: 7}
		r.Signer[0] = 1
		obs, learn := r.PackObservation()
		if learn != wantLearn {
			t.Fatalf("reason %d: learn %v", reason, learn)
		}
		if learn && (obs.IP != r.Key() || obs.Signer != r.Signer) {
			t.Fatalf("reason %d: observation keys %v %x", reason, obs.IP, obs.Signer)
		}
		if paid := obs.ExecNanos != 0; learn && paid != wantPaid {
			t.Fatalf("reason %d: paid %v (%+v)", reason, paid, obs)
		}
		if wantPaid && (obs.Fee != r.Fee || obs.CUs != max(costUnits, 1) && costUnits != 0 || costUnits == 0 && obs.CUs != r.CUs) {
			t.Fatalf("reason %d: %+v", reason, obs)
		}
		m := model.New(model.DefaultParams())
		r.Apply(m)
		if got := m.Stats().Observations; got != map[bool]uint64{true: 1, false: 0}[wantLearn] {
			t.Fatalf("reason %d: %d observations after Apply", reason, got)
		}
	}
	f(0, 8_000, true, true) // included: fee per reported cost unit
	f(0, 0, true, true)     // included, no cost reported: the estimate
	f(68, 0, true, false)   // insufficient funds for fee: the sender's
	f(71, 0, true, false)   // blockhash not found: the sender's
	f(64, 0, false, false)  // account in use: the scheduler's
	f(81, 0, false, false)  // would exceed the block cost limit
	f(200, 0, false, false) // an unknown code blames nobody
}
