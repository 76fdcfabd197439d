package packmode

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
)

// bareLoop is a loop without a session: enough for learn, score and the
// queue (nothing here frees a payload).
func bareLoop(pol Policy, n int) *Loop {
	cfg := DefaultConfig()
	cfg.Policy = pol
	if pol == PolicyModel {
		cfg.Model = model.New(model.DefaultParams())
	}
	return &Loop{cfg: cfg, st: &Stats{}, txs: make([]txRec, n), q: newTxQueue(n), rescoreLeft: maxRescored}
}

func v4(a, b, c, d byte) [16]byte { return [16]byte{10: 0xff, 11: 0xff, 12: a, 13: b, 14: c, 15: d} }

func payerKey(tag, i byte) (p [32]byte) {
	p[0], p[1], p[2] = tag, i, 0x5a
	return p
}

// TestLearnChargesTheClaim: a sender-caused refusal counts against its
// IP at the fee per cost unit it claimed. A reputation farmer that pays
// for cheap transactions and sends expensive claims from payers that
// cannot pay then ranks its claims below an honest sender's ordinary
// fee; charged at its usual (cheap) claim, it would keep 90 % of its
// claims' rank and outbid the honest sender tenfold.
func TestLearnChargesTheClaim(t *testing.T) {
	l := bareLoop(PolicyModel, 1)
	farmer, honest := v4(203, 0, 113, 1), v4(10, 1, 0, 1)
	const cost = 100_000
	for i := range 400 {
		// The farmer: 9 in 10 cheap and paid (0.1 lamport per cost
		// unit), 1 in 10 a claim of 10 per unit from a fresh, empty payer.
		tx := txRec{ip: farmer, payer: payerKey(1, byte(i%8)), fee: 10_000, cost: cost}
		res := pack.ExecResult{}
		if i%10 == 9 {
			tx.payer = payerKey(2, byte(i))
			tx.payer[3] = byte(i >> 8)
			tx.fee = 1_000_000
			res.Reason = bindings.ReasonAccountNotFound
		}
		if v := l.learn(&tx, res); (v.Blame == pack.BlameSender) != (i%10 == 9) {
			t.Fatalf("result %d: verdict %+v", i, v)
		}
		// The honest sender pays 2 per unit, and 1 in 10 of its
		// transactions fails (an empty account) at that claim.
		h := txRec{ip: honest, payer: payerKey(3, byte(i%8)), fee: 200_000, cost: cost}
		hr := pack.ExecResult{}
		if i%10 == 4 {
			hr.Reason = bindings.ReasonInsufficientFundsForFee
		}
		l.learn(&h, hr)
	}
	claim := txRec{ip: farmer, payer: payerKey(2, 0xfe), fee: 1_000_000, cost: cost}
	fair := txRec{ip: honest, payer: payerKey(3, 1), fee: 200_000, cost: cost}
	sc, sf := l.score(&claim), l.score(&fair)
	if !(sc < sf) {
		t.Fatalf("the farmer's claim scores %.3g, the honest fee %.3g: the farmer's failed claims were not weighed at their value", sc, sf)
	}
	if f := l.cfg.Model.IPFactor(model.IPv6(honest)); f < 0.85 {
		t.Fatalf("honest IP factor %.3f: 10 %% failures at its own claim should cost about 10 %%", f)
	}
	if l.st.Learned != 800 {
		t.Fatalf("learned %d of 800 results", l.st.Learned)
	}
}

// TestForwardedLearnsByPayer: a forwarded transaction's result is
// charged to its payer's key, not to the forwarder's address: an honest
// sender behind a forwarder that also passes on a sybil's failing claims
// keeps its rank, the forwarder's address gains no record, and the rows
// rebuild the same model (replay). Keyed by the forwarder's address, the
// honest sender would share the sybil's failures.
func TestForwardedLearnsByPayer(t *testing.T) {
	fwd := v4(192, 0, 2, 10)
	run := func(flags bindings.TpuFlags) (*Loop, []metastore.Row) {
		l := bareLoop(PolicyModel, 1)
		rows := metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 1024, Batches: 4})
		l.cfg.Rows = rows
		for i := range 300 {
			h := txRec{ip: fwd, flags: flags, payer: payerKey(1, byte(i%4)), fee: 100_000, cost: 100_000}
			l.learn(&h, pack.ExecResult{CostUnits: 100_000})
			s := txRec{ip: fwd, flags: flags, payer: payerKey(2, byte(i)), fee: 1_000_000, cost: 100_000}
			s.payer[3] = byte(i >> 8)
			l.learn(&s, pack.ExecResult{Reason: bindings.ReasonAccountNotFound})
		}
		rows.Flush()
		return l, rows.Collect(nil)
	}
	forwardedFlags := bindings.TpuForwarded | bindings.TpuFromStakedNode
	l, rows := run(forwardedFlags)
	honest := txRec{ip: fwd, flags: forwardedFlags, payer: payerKey(1, 2), fee: 100_000, cost: 100_000}
	if s := l.score(&honest); s < 0.9 {
		t.Fatalf("honest forwarded sender scores %.3f of its fee per unit (1)", s)
	}
	if _, known := l.cfg.Model.IPScore(model.IPv6(fwd)); known {
		t.Fatal("the forwarder's address was charged or credited for what it forwarded")
	}
	if len(rows) != 600 {
		t.Fatalf("%d rows, want 600", len(rows))
	}
	re := model.New(model.DefaultParams())
	for i := range rows {
		if rows[i].Channel != metastore.PackForwardedChannel || rows[i].IP != fwd {
			t.Fatalf("row %d: channel %d, IP %x", i, rows[i].Channel, rows[i].IP)
		}
		rows[i].Apply(re)
	}
	key := metastore.ForwardedKey(honest.payer)
	if a, b := re.Forward(key, honest.payer), l.cfg.Model.Forward(key, honest.payer); a != b {
		t.Fatalf("replayed model scores the honest sender %v, the loop's %v", a, b)
	}

	// The same traffic not forwarded (the address is the sender's, one
	// for both): the honest sender shares the failures.
	direct, _ := run(bindings.TpuFromStakedNode)
	honest.flags = bindings.TpuFromStakedNode
	if s := direct.score(&honest); s >= 0.5 {
		t.Fatalf("keyed by the shared address the honest sender scores %.3f: the test does not tell the keys apart", s)
	}
}

// TestForwardedUnparsableChargesNobody: an unparsable transaction that
// came forwarded penalises nobody (its address is the forwarder's, and it
// names no payer); one sent directly penalises its address.
func TestForwardedUnparsableChargesNobody(t *testing.T) {
	garbage := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	txs := []testTx{
		{data: garbage, ip: v4(192, 0, 2, 10), flags: bindings.TpuForwarded | bindings.TpuFromStakedNode},
		{data: garbage, ip: v4(192, 0, 2, 10), flags: bindings.TpuForwarded | bindings.TpuFromStakedNode},
		{data: garbage, ip: v4(198, 51, 100, 7)},
	}
	socket, v, ready := serveValidator(t, txs)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := session.Connect(context.Background(), socket, bindings.Profile41, testLogon(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Model = model.New(model.DefaultParams())
	cfg.Logger = quiet
	if cfg, err = cfg.withDefaults(); err != nil {
		t.Fatal(err)
	}
	st := &Stats{}
	l, err := newLoop(cfg, s, st)
	if err != nil {
		t.Fatal(err)
	}
	l.start = time.Now()
	v.feed(len(txs))
	for deadline := time.Now().Add(5 * time.Second); st.Received < uint64(len(txs)) && time.Now().Before(deadline); {
		l.drainTPU()
	}
	if st.Received != uint64(len(txs)) || st.Ends[EndRejected] != uint64(len(txs)) {
		t.Fatalf("received %d, rejected %d of %d", st.Received, st.Ends[EndRejected], len(txs))
	}
	if st.Penalized != 1 || cfg.Model.Stats().Penalties != 1 {
		t.Fatalf("penalties: loop %d, model %d; want 1 (the direct sender only)", st.Penalized, cfg.Model.Stats().Penalties)
	}
	if _, known := cfg.Model.IPScore(model.IPv6(v4(192, 0, 2, 10))); known {
		t.Fatal("the forwarder's address was penalised")
	}
}

// TestPopBestRescores: under the model policy, what the model learnt
// since a transaction was queued reorders the queue when it reaches the
// top: a spammer's claim queued before its first failures were seen goes
// behind an honest transaction; fee-only keeps fee order.
func TestPopBestRescores(t *testing.T) {
	spamIP, honestIP := v4(198, 51, 100, 7), v4(10, 1, 0, 1)
	for _, tc := range []struct {
		pol       Policy
		wantFirst int32
	}{{PolicyModel, 1}, {PolicyFeeOnly, 0}} {
		t.Run(tc.pol.String(), func(t *testing.T) {
			l := bareLoop(tc.pol, 4)
			l.txs[0] = txRec{ip: spamIP, payer: payerKey(2, 0), fee: 1_000_000, cost: 100_000, seq: 0}
			l.txs[1] = txRec{ip: honestIP, payer: payerKey(1, 0), fee: 200_000, cost: 100_000, seq: 1}
			for s := int32(0); s < 2; s++ {
				if !l.enqueue(s) {
					t.Fatal("enqueue refused")
				}
			}
			// The spammer's first batch comes back: every claim failed.
			for i := range rescoreEvery {
				tx := txRec{ip: spamIP, payer: payerKey(2, byte(i+1)), fee: 1_000_000, cost: 100_000}
				l.learn(&tx, pack.ExecResult{Reason: bindings.ReasonInsufficientFundsForFee})
			}
			first, ok := l.popBest(&l.q)
			if !ok || first != tc.wantFirst {
				t.Fatalf("first popped %d (ok %v), want %d", first, ok, tc.wantFirst)
			}
			second, ok := l.popBest(&l.q)
			if !ok || second != 1-tc.wantFirst {
				t.Fatalf("second popped %d (ok %v)", second, ok)
			}
			if _, ok := l.popBest(&l.q); ok {
				t.Fatal("the queue should be empty")
			}
			if tc.pol == PolicyModel && (l.rescored != 1 || l.txs[0].score >= l.txs[1].score) {
				t.Fatalf("rescored %d; scores spam %.3g, honest %.3g", l.rescored, l.txs[0].score, l.txs[1].score)
			}
		})
	}
}

// TestCheckLaneRanked: under the model policy the CHECK lane is ranked by
// score, so the check capacity goes to senders that pay before a known
// spammer's higher claim; under fee-only and FIFO it keeps arrival order
// (Agave checks what it receives in arrival order).
func TestCheckLaneRanked(t *testing.T) {
	spamIP, honestIP, richIP := v4(198, 51, 100, 7), v4(10, 1, 0, 1), v4(10, 1, 0, 2)
	for _, tc := range []struct {
		pol  Policy
		want [3]int32
	}{{PolicyModel, [3]int32{2, 1, 0}}, {PolicyFeeOnly, [3]int32{0, 1, 2}}, {PolicyFIFO, [3]int32{0, 1, 2}}} {
		t.Run(tc.pol.String(), func(t *testing.T) {
			l := bareLoop(tc.pol, 4)
			l.checkQ = newTxQueue(4)
			if tc.pol == PolicyModel { // the spammer's claims have failed before
				for i := range 50 {
					tx := txRec{ip: spamIP, payer: payerKey(2, byte(i+1)), fee: 1_000_000, cost: 100_000}
					l.learn(&tx, pack.ExecResult{Reason: bindings.ReasonBlockhashNotFound})
				}
			}
			l.txs[0] = txRec{ip: spamIP, payer: payerKey(2, 0), fee: 1_000_000, cost: 100_000, seq: 0}
			l.txs[1] = txRec{ip: honestIP, payer: payerKey(1, 0), fee: 200_000, cost: 100_000, seq: 1}
			l.txs[2] = txRec{ip: richIP, payer: payerKey(3, 0), fee: 3_000_000, cost: 100_000, seq: 2}
			for s := int32(0); s < 3; s++ {
				l.pushCheck(s)
			}
			if l.checkQ.Len() != 3 || l.txs[0].state != txChecking {
				t.Fatalf("lane holds %d", l.checkQ.Len())
			}
			for i, want := range tc.want {
				if got, ok := l.popBest(&l.checkQ); !ok || got != want {
					t.Fatalf("checked #%d: %d (ok %v), want order %v", i, got, ok, tc.want)
				}
			}
		})
	}
}

// TestPopBestKeepsSmallChanges: a lesson that moves a queued
// transaction's score by a hair (an honest sender's one failure) does not
// put it back behind a neighbour it barely trailed, and a round puts back
// at most its budget.
func TestPopBestKeepsSmallChanges(t *testing.T) {
	a, b := v4(10, 1, 0, 1), v4(10, 1, 0, 2)
	l := bareLoop(PolicyModel, 4)
	for i := range 100 { // both senders are known payers
		l.learn(&txRec{ip: a, payer: payerKey(1, 0), fee: 100_000, cost: 100_000}, pack.ExecResult{})
		l.learn(&txRec{ip: b, payer: payerKey(2, 0), fee: 100_000, cost: 100_000}, pack.ExecResult{})
		_ = i
	}
	l.txs[0] = txRec{ip: a, payer: payerKey(1, 0), fee: 100_500, cost: 100_000, seq: 0}
	l.txs[1] = txRec{ip: b, payer: payerKey(2, 0), fee: 100_000, cost: 100_000, seq: 1}
	l.enqueue(0)
	l.enqueue(1)
	// One failure of a's: its score drops by about a percent, below b's;
	// a batch of other results makes the queued scores stale.
	l.learn(&txRec{ip: a, payer: payerKey(1, 1), fee: 100_000, cost: 100_000}, pack.ExecResult{Reason: bindings.ReasonInsufficientFundsForFee})
	for range rescoreEvery {
		l.learn(&txRec{ip: v4(10, 1, 0, 3), payer: payerKey(4, 0), fee: 100_000, cost: 100_000}, pack.ExecResult{})
	}
	if first, _ := l.popBest(&l.q); first != 0 || l.rescored != 0 {
		t.Fatalf("popped %d first, %d put back: a small change churned the queue", first, l.rescored)
	}
	// An exhausted budget puts nothing back, however far a score fell.
	spam := v4(198, 51, 100, 7)
	l.txs[2] = txRec{ip: spam, payer: payerKey(3, 0), fee: 1_000_000, cost: 100_000, seq: 2}
	l.enqueue(2)
	for i := range rescoreEvery {
		l.learn(&txRec{ip: spam, payer: payerKey(3, byte(i+1)), fee: 1_000_000, cost: 100_000}, pack.ExecResult{Reason: bindings.ReasonAccountNotFound})
	}
	l.rescoreLeft = 0
	if first, _ := l.popBest(&l.q); first != 2 {
		t.Fatalf("popped %d first with no budget left, want the stale top (2)", first)
	}
}
