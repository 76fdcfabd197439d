package pack

import "github.com/solqos/qos/agave/bindings"

// Progress is one decoded progress_tracker message, every field any
// bindings version carries (a version without a field leaves it zero):
// 4.0 has the leader state, slots, remaining cost units and slot
// progress; 4.1–4.3 add the epoch and latest blockhash; 4.4 adds the
// remaining allocated-accounts data size and the target bank time.
type Progress struct {
	// LeaderState is bindings.NotLeader, bindings.LeaderStarting or bindings.LeaderReady
	// (the same in every bindings version from Agave 4.0).
	LeaderState bindings.LeaderState
	// CurrentSlotProgress is how far through the current slot the
	// validator is, in percent.
	CurrentSlotProgress uint8
	// TargetBankTimeMs is the bank's target duration (4.4).
	TargetBankTimeMs uint16
	// Epoch is the current epoch (4.1+).
	Epoch uint64
	// CurrentSlot is the slot of the working bank (or the tip).
	CurrentSlot uint64
	// NextLeaderSlot and LeaderRangeEnd bound the validator's next (or
	// current) leader window, inclusive.
	NextLeaderSlot uint64
	LeaderRangeEnd uint64
	// RemainingCostUnits is the block limit minus the cost already in the
	// working bank; meaningful only while leader.
	RemainingCostUnits uint64
	// RemainingAllocatedAccountsDataSize is the block's remaining
	// account-data allocation budget (4.4).
	RemainingAllocatedAccountsDataSize uint64
	// LatestBlockhash is the working bank's last blockhash (4.1+).
	LatestBlockhash [32]byte
}

// Leader is the scheduler's view of the validator's leader state, fed
// with every progress message in order. It answers whether EXECUTE
// batches may be sent now and which max_working_slot they carry.
type Leader struct {
	p       Progress
	seen    bool
	changed bool // the slot changed with the last Update
	// Slack is how many slots past the current one a batch may still
	// execute in (max_working_slot = current + Slack, never past the
	// leader window). 0, the default, keeps every batch in the slot whose
	// budget it was charged to; a batch that misses it comes back as
	// MAX_WORKING_SLOT_EXCEEDED and is rescheduled.
	Slack uint64
	// EndCutoff stops EXECUTE in the leader window's last slot once the
	// slot is this many percent through (current_slot_progress; 0: never).
	// A batch that reaches its worker after the window ended waits 50 ms
	// for a bank that does not come and is answered BANK_NOT_AVAILABLE,
	// with every EXECUTE queued behind it (consume_worker.rs external::
	// ExternalWorker::execute_batch and should_drain_executes, read at
	// karmaol/4.0.3salsa 089be60e, an Agave 4.0 fork): in earlier slots of
	// the window Slack lets it run in the next one instead.
	EndCutoff uint8
}

// Update records a progress message and reports whether the current
// slot changed.
func (l *Leader) Update(p Progress) (slotChanged bool) {
	l.changed = !l.seen || p.CurrentSlot != l.p.CurrentSlot
	l.p, l.seen = p, true
	return l.changed
}

// Progress returns the last progress message (zero before the first).
func (l *Leader) Progress() Progress { return l.p }

// CanExecute reports whether EXECUTE batches may be sent: the last
// progress message said LEADER_READY, and it is not the end of the leader
// window's last slot (EndCutoff). (LEADER_STARTING means the bank is not
// ready; a batch sent then waits in the worker and may come back
// BANK_NOT_AVAILABLE.)
func (l *Leader) CanExecute() bool {
	if !l.seen || l.p.LeaderState != bindings.LeaderReady {
		return false
	}
	last := l.p.LeaderRangeEnd <= l.p.CurrentSlot
	return !last || l.EndCutoff == 0 || l.p.CurrentSlotProgress < l.EndCutoff
}

// MaxWorkingSlot returns the max_working_slot for an EXECUTE batch sent
// now: the current slot plus Slack, but not past the leader window's end
// (when the window is known, i.e. its end is not below the current slot).
func (l *Leader) MaxWorkingSlot() uint64 {
	s := l.p.CurrentSlot
	m := satAdd(s, l.Slack)
	if l.p.LeaderRangeEnd >= s && m > l.p.LeaderRangeEnd {
		m = l.p.LeaderRangeEnd
	}
	return m
}

// SlotsUntilLeader returns how many slots remain before the next leader
// window (0 while leader or when the window has started).
func (l *Leader) SlotsUntilLeader() uint64 {
	return satSub(l.p.NextLeaderSlot, l.p.CurrentSlot)
}
