package pack

import "testing"

func TestBudgetAvailable(t *testing.T) {
	p := BudgetParams{BlockLimit: 1000, AccountLimit: 400, VoteLimit: 300, VoteReserve: 100, Accounts: 16}
	tests := []struct {
		name          string
		remaining     uint64
		inflight      uint64
		votes         uint64
		settled       uint64
		progress      uint8
		nonVote, vote uint64
	}{
		{"fresh block: non-votes leave the reserve", 1000, 0, 0, 0, 0, 900, 300},
		{"progress above the limit is capped", 5000, 0, 0, 0, 0, 900, 300},
		{"in flight and settled are taken off", 1000, 200, 0, 100, 0, 600, 300},
		{"votes used part of the reserve", 1000, 0, 60, 0, 0, 960, 240},
		{"votes used all of it", 1000, 0, 150, 0, 0, 1000, 150},
		{"vote limit reached", 1000, 0, 300, 0, 0, 1000, 0},
		{"block nearly full: only votes", 80, 0, 0, 0, 0, 0, 80},
		{"over-reserved", 100, 150, 0, 0, 0, 0, 0},
		{"slot 70 % through: 30 % of the reserve is kept", 1000, 0, 0, 0, 70, 970, 300},
		{"slot 70 % through, votes used less than that share", 1000, 0, 20, 0, 70, 970, 280},
		{"slot 70 % through, votes used more than the rest", 1000, 0, 80, 0, 70, 980, 220},
		{"slot's end: nothing kept", 80, 0, 0, 0, 100, 80, 80},
		{"progress above 100 counts as 100", 1000, 0, 0, 0, 250, 1000, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBudget(p)
			if err != nil {
				t.Fatal(err)
			}
			b.StartSlot(5, tt.remaining)
			b.inflight, b.votes, b.settled = tt.inflight, tt.votes, tt.settled
			b.SetProgress(tt.progress)
			if got := b.Available(false); got != tt.nonVote {
				t.Errorf("Available(non-vote) = %d, want %d", got, tt.nonVote)
			}
			if got := b.Available(true); got != tt.vote {
				t.Errorf("Available(vote) = %d, want %d", got, tt.vote)
			}
		})
	}
}

func TestBudgetReserveSettle(t *testing.T) {
	b, _ := NewBudget(BudgetParams{BlockLimit: 1000, AccountLimit: 400, VoteLimit: 300, Accounts: 2})
	b.StartSlot(0, 1000) // slot 0 is a slot like any other
	hot := keysW([]uint64{1, 2}, []uint64{3})
	if f := b.fits(hot, 300, false); f != fitOK {
		t.Fatalf("fits: %d", f)
	}
	var acct [MaxTxLocks]int32
	b.reserve(hot, 300, false, acct[:2])
	if b.AccountUnits(hot.Key(0)) != 300 || b.AccountUnits(hot.Key(2)) != 0 || b.InFlight() != 300 {
		t.Fatalf("after reserve: %d %d %d", b.AccountUnits(hot.Key(0)), b.AccountUnits(hot.Key(2)), b.InFlight())
	}
	if f := b.fits(keysW([]uint64{1}, nil), 101, false); f != fitAccount {
		t.Errorf("account 1 at 300 + 101 > 400: %d", f)
	}
	if f := b.fits(keysW([]uint64{9}, nil), 10, false); f != fitTable {
		t.Errorf("a third account in a 2-account table: %d", f)
	}
	// The transaction ran for 120: the account and the block keep 120.
	b.settle(b.gen, 300, 120, false, acct[:2])
	if b.AccountUnits(hot.Key(0)) != 120 || b.InFlight() != 0 || b.Available(false) != 880 {
		t.Errorf("after settle: account %d, in flight %d, available %d", b.AccountUnits(hot.Key(0)), b.InFlight(), b.Available(false))
	}
	// A new progress message counts it; settled is dropped.
	b.SetRemaining(880)
	if b.Available(false) != 880 {
		t.Errorf("after progress: available %d", b.Available(false))
	}
	// A reservation of another slot is ignored when it settles.
	gen := b.gen
	b.reserve(keysW([]uint64{1}, nil), 50, false, acct[:1])
	b.StartSlot(1, 1000)
	b.settle(gen, 50, 50, false, acct[:1])
	if b.InFlight() != 0 || b.AccountUnits(hot.Key(0)) != 0 || b.Available(false) != 1000 {
		t.Errorf("new slot: in flight %d, account %d, available %d", b.InFlight(), b.AccountUnits(hot.Key(0)), b.Available(false))
	}
	if _, err := NewBudget(BudgetParams{}); err == nil {
		t.Error("a budget with no account room accepted")
	}
}
