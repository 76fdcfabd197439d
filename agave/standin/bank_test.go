package standin

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const funded = 1_000_000_000

// newTestBank returns a bank at slot 10 with payers 1..4 funded, payer 5
// existing with nothing, and lookup table 0xa0 of four addresses.
func newTestBank(t testing.TB, cfg BankConfig) *Bank {
	t.Helper()
	b := NewBank(cfg)
	for i := byte(1); i <= 4; i++ {
		b.Fund(keyOf(i), funded)
	}
	b.Fund(keyOf(5), 0)
	b.AddLookupTable(keyOf(0xa0), []Key{keyOf(0xb0), keyOf(0xb1), keyOf(0xb2), keyOf(0xb3)}, ^uint64(0))
	b.SetSlot(10, true)
	return b
}

// run loads txs and executes them as one batch; it returns the results
// and the loaded batch (holding its locks until release).
func run(t *testing.T, b *Bank, allOrNothing bool, txs ...testTx) ([]result, []txn) {
	t.Helper()
	batch := make([]txn, len(txs))
	for i, tx := range txs {
		loadTx(t, b, tx, &batch[i])
	}
	out := make([]result, len(txs))
	b.execute(batch, allOrNothing, out)
	return out, batch
}

func reasons(rs []result) []Reason {
	out := make([]Reason, len(rs))
	for i, r := range rs {
		out[i] = r.reason
	}
	return out
}

func wantReasons(t *testing.T, got []result, want ...Reason) {
	t.Helper()
	g := reasons(got)
	if len(g) != len(want) {
		t.Fatalf("got %d results, want %d", len(g), len(want))
	}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("results %v, want %v", g, want)
		}
	}
}

func TestBankChargesRealFeeAndCost(t *testing.T) {
	b := newTestBank(t, BankConfig{})
	h := b.LatestBlockhash()
	out, batch := run(t, b, false, testTx{id: 1, payer: keyOf(1), blockhash: h, cuLimit: 100_000, cuPrice: 1000})
	b.release(batch)
	wantReasons(t, out, ReasonNone)
	// Fee: one signature (5000) + ⌈1000 µlamports × 100 000 / 10⁶⌉ = 100.
	const fee = 5000 + 100
	if out[0].balance != funded-fee {
		t.Fatalf("balance after %d, want %d", out[0].balance, funded-fee)
	}
	if bal, _ := b.Balance(keyOf(1)); bal != funded-fee {
		t.Fatalf("bank balance %d, want %d", bal, funded-fee)
	}
	// Cost: signature 720 + one write lock 300 + 22 data bytes / 4 + 100 000
	// requested + 64 MiB of loaded-accounts limit at 8 per 32 KiB.
	const cost = 720 + 300 + 22/4 + 100_000 + 2048*8
	if out[0].cost != cost {
		t.Fatalf("cost units %d, want %d", out[0].cost, cost)
	}
	if got := b.RemainingCost(); got != MaxBlockUnits-cost {
		t.Fatalf("remaining %d, want %d", got, MaxBlockUnits-cost)
	}
	if b.FeesCollected() != fee {
		t.Fatalf("fees %d, want %d", b.FeesCollected(), fee)
	}
}

func TestBankRejections(t *testing.T) {
	tests := []struct {
		name string
		cfg  BankConfig
		prep func(b *Bank)
		txs  func(h Key) []testTx
		aon  bool
		want []Reason
	}{
		{name: "unknown payer", txs: func(h Key) []testTx { return []testTx{{id: 1, payer: keyOf(9), blockhash: h}} },
			want: []Reason{ReasonAccountNotFound}},
		{name: "insufficient funds", txs: func(h Key) []testTx { return []testTx{{id: 1, payer: keyOf(5), blockhash: h}} },
			want: []Reason{ReasonInsufficientFundsForFee}},
		{name: "balance spent earlier in the batch",
			prep: func(b *Bank) { b.Fund(keyOf(6), 5000+5000+4999) },
			txs: func(h Key) []testTx {
				return []testTx{{id: 1, payer: keyOf(6), blockhash: h}, {id: 2, payer: keyOf(6), blockhash: h}, {id: 3, payer: keyOf(6), blockhash: h}}
			},
			want: []Reason{ReasonNone, ReasonNone, ReasonInsufficientFundsForFee}},
		{name: "unknown blockhash", txs: func(Key) []testTx { return []testTx{{id: 1, payer: keyOf(1), blockhash: keyOf(0x77)}} },
			want: []Reason{ReasonBlockhashNotFound}},
		{name: "repeat in batch", txs: func(h Key) []testTx {
			return []testTx{{id: 1, payer: keyOf(1), blockhash: h}, {id: 1, payer: keyOf(1), blockhash: h}}
		}, want: []Reason{ReasonNone, ReasonAlreadyProcessed}},
		{name: "block cost limit", cfg: BankConfig{BlockCostLimit: 250_000}, txs: func(h Key) []testTx {
			return []testTx{{id: 1, payer: keyOf(1), blockhash: h, cuLimit: 200_000}, {id: 2, payer: keyOf(2), blockhash: h, cuLimit: 200_000}}
		}, want: []Reason{ReasonNone, ReasonWouldExceedMaxBlockCostLimit}},
		{name: "account cost limit", cfg: BankConfig{AccountCostLimit: 250_000}, txs: func(h Key) []testTx {
			hot := keyOf(0x40)
			return []testTx{
				{id: 1, payer: keyOf(1), writable: []Key{hot}, blockhash: h, cuLimit: 200_000},
				{id: 2, payer: keyOf(2), writable: []Key{hot}, blockhash: h, cuLimit: 200_000},
				{id: 3, payer: keyOf(3), readonly: []Key{hot}, blockhash: h, cuLimit: 200_000},
			}
		}, want: []Reason{ReasonNone, ReasonWouldExceedMaxAccountCostLimit, ReasonNone}},
		{name: "all or nothing", aon: true, txs: func(h Key) []testTx {
			return []testTx{{id: 1, payer: keyOf(1), blockhash: h}, {id: 2, payer: keyOf(5), blockhash: h}}
		}, want: []Reason{ReasonAllOrNothingBatchFailure, ReasonInsufficientFundsForFee}},
		{name: "lookup table missing", txs: func(h Key) []testTx {
			k := keyOf(0xa9)
			return []testTx{{id: 1, payer: keyOf(1), blockhash: h, lut: &k, lutW: []byte{0}}}
		}, want: []Reason{ReasonAddressLookupTableNotFound}},
		{name: "lookup index out of range", txs: func(h Key) []testTx {
			k := keyOf(0xa0)
			return []testTx{{id: 1, payer: keyOf(1), blockhash: h, lut: &k, lutW: []byte{4}}}
		}, want: []Reason{ReasonAddressLookupTableNotFound}},
		{name: "duplicate account", txs: func(h Key) []testTx {
			return []testTx{{id: 1, payer: keyOf(1), writable: []Key{keyOf(1)}, blockhash: h}}
		}, want: []Reason{ReasonSanitizeFailure}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBank(t, tc.cfg)
			if tc.prep != nil {
				tc.prep(b)
			}
			out, batch := run(t, b, tc.aon, tc.txs(b.LatestBlockhash())...)
			b.release(batch)
			wantReasons(t, out, tc.want...)
			if tc.aon {
				if bal, _ := b.Balance(keyOf(1)); bal != funded {
					t.Fatalf("all-or-nothing failure charged the payer: %d", bal)
				}
				if b.RemainingCost() != MaxBlockUnits {
					t.Fatalf("all-or-nothing failure kept cost: remaining %d", b.RemainingCost())
				}
			}
		})
	}
}

func TestBankSanitizeFailure(t *testing.T) {
	b := newTestBank(t, BankConfig{})
	var tx txn
	tx.load([]byte{1, 2, 3}, b.tables, b.fp)
	if tx.reason != ReasonSanitizeFailure || tx.parsed {
		t.Fatalf("garbage: reason %v parsed %v", tx.reason, tx.parsed)
	}
	c := b.check(&tx)
	if !c.parseFailed {
		t.Fatal("check of garbage did not report the parse failure")
	}
}

func TestBankAlreadyProcessedAndAge(t *testing.T) {
	b := newTestBank(t, BankConfig{MaxAge: 3})
	h := b.LatestBlockhash()
	tx := testTx{id: 7, payer: keyOf(1), blockhash: h}
	out, batch := run(t, b, false, tx)
	b.release(batch)
	wantReasons(t, out, ReasonNone)
	b.SetSlot(11, true)
	out, batch = run(t, b, false, tx)
	b.release(batch)
	wantReasons(t, out, ReasonAlreadyProcessed)
	var c txn
	loadTx(t, b, tx, &c)
	if r := b.check(&c); !r.processed || r.includedSlot != 10 || r.tooOld {
		t.Fatalf("check: %+v, want processed in slot 10", r)
	}
	// Three newer blockhashes push h out of a queue of three.
	b.SetSlot(12, true)
	b.SetSlot(13, true)
	out, batch = run(t, b, false, testTx{id: 8, payer: keyOf(1), blockhash: h})
	b.release(batch)
	wantReasons(t, out, ReasonBlockhashNotFound)
	loadTx(t, b, testTx{id: 8, payer: keyOf(1), blockhash: h}, &c)
	if r := b.check(&c); !r.tooOld || r.balance != funded-5000 || r.slot != 13 {
		t.Fatalf("check: %+v, want too old, balance %d in slot 13", r, funded-5000)
	}
}

func TestBankLocksAcrossInFlightBatches(t *testing.T) {
	b := newTestBank(t, BankConfig{})
	h := b.LatestBlockhash()
	hot, shared := keyOf(0x40), keyOf(0x41)
	outA, batchA := run(t, b, false, testTx{id: 1, payer: keyOf(1), writable: []Key{hot}, readonly: []Key{shared}, blockhash: h})
	wantReasons(t, outA, ReasonNone)
	// While A is in flight: writing hot conflicts, reading hot conflicts,
	// reading shared does not, writing shared does; a batch may conflict
	// with itself.
	outB, batchB := run(t, b, false,
		testTx{id: 2, payer: keyOf(2), writable: []Key{hot}, blockhash: h},
		testTx{id: 3, payer: keyOf(3), readonly: []Key{hot}, blockhash: h},
		testTx{id: 4, payer: keyOf(4), readonly: []Key{shared}, blockhash: h},
		testTx{id: 5, payer: keyOf(2), writable: []Key{shared}, blockhash: h},
		testTx{id: 6, payer: keyOf(4), writable: []Key{keyOf(0x42)}, blockhash: h},
		testTx{id: 7, payer: keyOf(4), writable: []Key{keyOf(0x42)}, blockhash: h},
	)
	wantReasons(t, outB, ReasonAccountInUse, ReasonAccountInUse, ReasonNone, ReasonAccountInUse, ReasonNone, ReasonNone)
	b.release(batchB)
	b.release(batchA)
	outC, batchC := run(t, b, false, testTx{id: 2, payer: keyOf(2), writable: []Key{hot}, blockhash: h})
	b.release(batchC)
	wantReasons(t, outC, ReasonNone)
	if len(b.locks) != 0 {
		t.Fatalf("locks left after release: %d", len(b.locks))
	}
}

// TestBankIntraBatchLocks: with relaxed intra-batch locks (SIMD-0083,
// the default) transactions of one batch may conflict with each other;
// strict, a later one that conflicts with an earlier one of its batch
// fails with ACCOUNT_IN_USE and takes no lock, while conflicts with other
// batches fail either way.
func TestBankIntraBatchLocks(t *testing.T) {
	x, y, z, held := keyOf(0x50), keyOf(0x51), keyOf(0x52), keyOf(0x53)
	for _, tc := range []struct {
		name   string
		strict bool
		want   []Reason
	}{
		{"relaxed", false, []Reason{ReasonNone, ReasonNone, ReasonNone, ReasonNone, ReasonNone, ReasonAccountInUse}},
		{"strict", true, []Reason{ReasonNone, ReasonAccountInUse, ReasonNone, ReasonAccountInUse, ReasonNone, ReasonAccountInUse}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBank(t, BankConfig{StrictBatchLocks: tc.strict})
			b.Fund(keyOf(5), funded)
			b.Fund(keyOf(6), funded)
			b.Fund(keyOf(9), funded)
			h := b.LatestBlockhash()
			_, other := run(t, b, false, testTx{id: 1, payer: keyOf(9), writable: []Key{held}, blockhash: h})
			out, batch := run(t, b, false,
				testTx{id: 2, payer: keyOf(1), writable: []Key{x}, blockhash: h},
				testTx{id: 3, payer: keyOf(2), readonly: []Key{x}, blockhash: h}, // reads what 2 writes
				testTx{id: 4, payer: keyOf(3), readonly: []Key{y}, blockhash: h},
				testTx{id: 5, payer: keyOf(4), writable: []Key{y}, blockhash: h}, // writes what 4 reads
				testTx{id: 6, payer: keyOf(5), readonly: []Key{y, z}, blockhash: h},
				testTx{id: 7, payer: keyOf(6), readonly: []Key{held}, blockhash: h}, // another batch's
			)
			// Strict: 6 only reads y, which 4 read-locked (5 failed and
			// took nothing), so it goes.
			wantReasons(t, out, tc.want...)
			b.release(batch)
			b.release(other)
			if len(b.locks) != 0 {
				t.Fatalf("locks left after release: %v", b.locks)
			}
		})
	}
}

// TestBankDemotesReservedWriteLocks: a write lock the message requests on
// a reserved account (here the system program, all zero bytes) is taken
// as a read lock, as Agave does, so two in-flight batches that both
// "write" it do not collide; the cost still charges the requested lock.
func TestBankDemotesReservedWriteLocks(t *testing.T) {
	b := newTestBank(t, BankConfig{})
	h := b.LatestBlockhash()
	system := Key{}
	tx := testTx{id: 1, payer: keyOf(1), writable: []Key{system, keyOf(0x60)}, blockhash: h}
	var loaded txn
	loadTx(t, b, tx, &loaded)
	if !loaded.writable[0] || loaded.writable[1] || !loaded.writable[2] {
		t.Fatalf("writable %v for payer, system program, 0x60: want true, false, true", loaded.writable[:3])
	}
	plain := testTx{id: 9, payer: keyOf(1), writable: []Key{keyOf(0x61), keyOf(0x60)}, blockhash: h}
	var loadedPlain txn
	loadTx(t, b, plain, &loadedPlain)
	if loaded.cost != loadedPlain.cost {
		t.Errorf("cost %d with a demoted write lock, %d without: the requested lock is charged either way", loaded.cost, loadedPlain.cost)
	}
	outA, batchA := run(t, b, false, tx)
	outB, batchB := run(t, b, false, testTx{id: 2, payer: keyOf(2), writable: []Key{system}, blockhash: h})
	wantReasons(t, outA, ReasonNone)
	wantReasons(t, outB, ReasonNone)
	b.release(batchA)
	b.release(batchB)
}

func TestBankLookupResolution(t *testing.T) {
	b := newTestBank(t, BankConfig{})
	k := keyOf(0xa0)
	var tx txn
	loadTx(t, b, testTx{id: 1, payer: keyOf(1), blockhash: b.LatestBlockhash(), lut: &k, lutW: []byte{2}, lutR: []byte{0, 3}}, &tx)
	if tx.reason != ReasonNone || !tx.resolved {
		t.Fatalf("reason %v resolved %v", tx.reason, tx.resolved)
	}
	got := tx.loadedKeys()
	want := []Key{keyOf(0xb2), keyOf(0xb0), keyOf(0xb3)}
	if len(got) != len(want) {
		t.Fatalf("loaded %d keys, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("loaded key %d = %x, want %x", i, got[i][0], want[i][0])
		}
	}
	if !tx.writable[tx.nacc-3] || tx.writable[tx.nacc-2] || tx.writable[tx.nacc-1] {
		t.Fatal("lookup writability wrong")
	}
}

func TestAuditPlantedDoubleFreeAndLeak(t *testing.T) {
	a := NewAudit()
	a.Give(0x4000, BlockPayload, 0)
	a.Give(0x4100, BlockResponses, 1)
	a.Give(0x4200, BlockPubkeys, 1)
	a.Returned(0, 0x4000)
	a.Returned(1, 0x4100)
	if err := a.Err(); err != nil {
		t.Fatalf("clean frees: %v", err)
	}
	// Planted double free.
	a.Returned(0, 0x4000)
	err := a.Err()
	var ae *AuditError
	if !errors.Is(err, ErrDoubleFree) || !errors.As(err, &ae) || ae.Offset != 0x4000 {
		t.Fatalf("double free not reported with its offset: %v", err)
	}
	// Planted foreign free.
	a.Returned(1, 0x9999)
	if err := a.Err(); !errors.Is(err, ErrForeignFree) || !strings.Contains(err.Error(), "0x9999") {
		t.Fatalf("foreign free not reported with its offset: %v", err)
	}
	// A free the allocator refused, of a block already back: a double
	// free with the allocator's reason.
	cause := errors.New("offset freed remotely twice")
	a.Refused(1, 0x4100, cause)
	if err := a.Err(); !errors.As(err, &ae) || !errors.Is(err, cause) {
		t.Fatalf("refused free: %v", err)
	}
	if err := a.Err(); !strings.Contains(err.Error(), "freed twice: offset 0x4100 (response array) refused by allocator slot 1") {
		t.Fatalf("refused free not named: %v", err)
	}
	// Planted leak: 0x4200 was never freed.
	err = a.Final()
	if !errors.Is(err, ErrLeak) || !strings.Contains(err.Error(), "0x4200 (resolved pubkeys)") {
		t.Fatalf("leak not reported with its offset: %v", err)
	}
	c := a.Counts()
	if c.Outstanding != 1 || c.Violations != 3 || c.Given[BlockPayload] != 1 || c.Returned[BlockResponses] != 1 {
		t.Fatalf("counts %+v", c)
	}
	// A block handed out again after coming back may be freed again.
	b := NewAudit()
	b.Give(0x100, BlockPayload, 0)
	b.Returned(0, 0x100)
	b.Give(0x100, BlockPayload, 0)
	b.Returned(0, 0x100)
	b.Give(0x200, BlockPayload, 0)
	b.Take(0x200)
	if err := b.Final(); err != nil {
		t.Fatalf("reuse of an offset: %v", err)
	}
}

func TestClockLeaderWindows(t *testing.T) {
	c := DefaultClockConfig()
	c.StartSlot = 16
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tick := c.TickDuration()
	slot := c.SlotDuration
	tests := []struct {
		at              time.Duration
		state           uint8
		slot, next, end uint64
		progress        uint8
	}{
		{0, LeaderStarting, 16, 16, 19, 0},
		{tick, LeaderReady, 16, 16, 19, 1},
		{slot / 2, LeaderReady, 16, 16, 19, 50},
		{3*slot + tick, LeaderReady, 19, 16, 19, 1},
		{4 * slot, NotLeader, 20, 24, 27, 0},
		{7*slot + 63*tick, NotLeader, 23, 24, 27, 98},
		{8 * slot, LeaderStarting, 24, 24, 27, 0},
	}
	for _, tc := range tests {
		p := c.At(tc.at)
		if p.LeaderState != tc.state || p.Slot != tc.slot || p.NextLeaderSlot != tc.next || p.LeaderRangeEnd != tc.end || p.SlotProgress != tc.progress {
			t.Errorf("at %v: %+v, want state %d slot %d window [%d,%d] progress %d", tc.at, p, tc.state, tc.slot, tc.next, tc.end, tc.progress)
		}
	}
}

// TestSimpleVoteCost: a simple vote costs Agave's fixed 3428 units and
// pays the signature fee.
func TestSimpleVoteCost(t *testing.T) {
	b := newTestBank(t, BankConfig{})
	auth, acct := voterKey(0)
	b.Fund(auth, funded)
	f := &feeder{hash: b.LatestBlockhash()}
	f.voterAuth[0], f.voterAcct[0] = auth, acct
	var v txn
	v.load(f.makeVote(), b.tables, b.fp)
	if v.reason != ReasonNone || v.cost != SimpleVoteUsageCost || v.fee != 5000 {
		t.Fatalf("vote: reason %v cost %d fee %d", v.reason, v.cost, v.fee)
	}
	out := make([]result, 1)
	b.execute([]txn{v}, false, out)
	if out[0].reason != ReasonNone || out[0].cost != SimpleVoteUsageCost {
		t.Fatalf("vote executed: %+v", out[0])
	}
}
