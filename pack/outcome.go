package pack

import (
	"fmt"

	"github.com/solqos/qos/agave/bindings"

	"github.com/solqos/qos/model"
)

// ExecResult is one transaction's ExecutionResponse, decoded.
type ExecResult struct {
	// Slot is the execution_slot (the bank's slot).
	Slot uint64
	// Reason is the not_included_reason; bindings.ReasonNone means
	// included.
	Reason bindings.NotIncludedReason
	// CostUnits is the block cost Agave charged (CostModel::
	// calculate_cost_for_executed_transaction(..).sum()), 0 when not
	// included.
	CostUnits uint64
	// FeePayerBalance is the fee payer's balance after execution.
	FeePayerBalance uint64
}

// The not-included reasons (bindings.NotIncludedReason) and processed
// codes (bindings.ProcessedCode) are the bindings' own, read from agave
// v4.0.0-rc.0 (8e3bcf0c) scheduler-bindings/src/lib.rs and later
// versions (see package bindings).

// Blame says whom an execution result teaches the model about.
type Blame uint8

const (
	// BlameNone: the result says nothing about the sender — the scheduler
	// or the validator caused it (locks, cost limits, slot timing, the
	// bank) — so the model learns nothing from it.
	BlameNone Blame = iota
	// BlameSender: the transaction could never have been included — it
	// cannot pay, is stale or a replay, or is malformed — so it counts
	// against its fee payer and its source IP.
	BlameSender
	// Credit: the transaction was included; it counts for its fee payer
	// and IP with the value it brought, fee per cost unit.
	Credit
)

// Verdict is what one execution result means for learning and for the
// transaction itself.
type Verdict struct {
	Blame Blame
	// Retry: the transaction is still good and may be scheduled again
	// (only for BlameNone results caused by scheduling).
	Retry bool
	// Value is fee / Cost for an included transaction (0 otherwise).
	Value float64
	// Cost is the cost units an included transaction took (the reported
	// ones, or the estimate when none were reported; at least 1).
	Cost uint64
}

// reasonRule is one row of the mapping table.
type reasonRule struct {
	name  string
	blame Blame
	retry bool
}

// reasonTable maps every not-included reason to its blame and whether
// the transaction may be retried. Scheduler-caused reasons blame nobody
// and are retryable: the account was in use, the block or an account or
// the votes would pass their cost limit, the bank was not available, the
// batch was cancelled or failed as a whole (all-or-nothing: another
// transaction failed). Sender-caused reasons blame the fee payer and IP:
// the fee cannot be paid (insufficient funds, invalid fee account, fee
// payer not found, missing signature), the transaction is stale or a
// replay (blockhash not found, already processed), or it is malformed or
// fails (sanitize failure, lookup-table failures, signature failure,
// duplicate or invalid accounts, instruction errors when dropped on
// failure, data-size and rent violations). Validator-side conditions
// (cluster maintenance, a restricted program, the cluster's total account
// data, program-cache pressure, resanitization, an unbalanced
// transaction) blame nobody; the ones that pass retry, the others drop.
var reasonTable = func() (t [256]reasonRule) {
	for i := range t {
		t[i] = reasonRule{name: fmt.Sprintf("reason_%d", i), blame: BlameNone}
	}
	set := func(r bindings.NotIncludedReason, name string, b Blame, retry bool) {
		t[r] = reasonRule{name, b, retry}
	}
	set(bindings.ReasonNone, "none", Credit, false)
	set(bindings.ReasonBankNotAvailable, "bank_not_available", BlameNone, true)
	set(bindings.ReasonPartialBatchCancelled, "partial_batch_cancelled", BlameNone, true)
	set(bindings.ReasonAllOrNothingBatchFailure, "all_or_nothing_batch_failure", BlameNone, true)
	set(bindings.ReasonAccountInUse, "account_in_use", BlameNone, true)
	set(bindings.ReasonAccountLoadedTwice, "account_loaded_twice", BlameSender, false)
	set(bindings.ReasonAccountNotFound, "account_not_found", BlameSender, false)
	set(bindings.ReasonProgramAccountNotFound, "program_account_not_found", BlameSender, false)
	set(bindings.ReasonInsufficientFundsForFee, "insufficient_funds_for_fee", BlameSender, false)
	set(bindings.ReasonInvalidAccountForFee, "invalid_account_for_fee", BlameSender, false)
	set(bindings.ReasonAlreadyProcessed, "already_processed", BlameSender, false)
	set(bindings.ReasonBlockhashNotFound, "blockhash_not_found", BlameSender, false)
	set(bindings.ReasonInstructionError, "instruction_error", BlameSender, false)
	set(bindings.ReasonCallChainTooDeep, "call_chain_too_deep", BlameSender, false)
	set(bindings.ReasonMissingSignatureForFee, "missing_signature_for_fee", BlameSender, false)
	set(bindings.ReasonInvalidAccountIndex, "invalid_account_index", BlameSender, false)
	set(bindings.ReasonSignatureFailure, "signature_failure", BlameSender, false)
	set(bindings.ReasonInvalidProgramForExecution, "invalid_program_for_execution", BlameSender, false)
	set(bindings.ReasonSanitizeFailure, "sanitize_failure", BlameSender, false)
	set(bindings.ReasonClusterMaintenance, "cluster_maintenance", BlameNone, false)
	set(bindings.ReasonAccountBorrowOutstanding, "account_borrow_outstanding", BlameSender, false)
	set(bindings.ReasonWouldExceedMaxBlockCostLimit, "would_exceed_max_block_cost_limit", BlameNone, true)
	set(bindings.ReasonUnsupportedVersion, "unsupported_version", BlameSender, false)
	set(bindings.ReasonInvalidWritableAccount, "invalid_writable_account", BlameSender, false)
	set(bindings.ReasonWouldExceedMaxAccountCostLimit, "would_exceed_max_account_cost_limit", BlameNone, true)
	set(bindings.ReasonWouldExceedAccountDataBlockLimit, "would_exceed_account_data_block_limit", BlameNone, true)
	set(bindings.ReasonTooManyAccountLocks, "too_many_account_locks", BlameSender, false)
	set(bindings.ReasonAddressLookupTableNotFound, "address_lookup_table_not_found", BlameSender, false)
	set(bindings.ReasonInvalidAddressLookupTableOwner, "invalid_address_lookup_table_owner", BlameSender, false)
	set(bindings.ReasonInvalidAddressLookupTableData, "invalid_address_lookup_table_data", BlameSender, false)
	set(bindings.ReasonInvalidAddressLookupTableIndex, "invalid_address_lookup_table_index", BlameSender, false)
	set(bindings.ReasonInvalidRentPayingAccount, "invalid_rent_paying_account", BlameSender, false)
	set(bindings.ReasonWouldExceedMaxVoteCostLimit, "would_exceed_max_vote_cost_limit", BlameNone, true)
	set(bindings.ReasonWouldExceedAccountDataTotalLimit, "would_exceed_account_data_total_limit", BlameNone, false)
	set(bindings.ReasonDuplicateInstruction, "duplicate_instruction", BlameSender, false)
	set(bindings.ReasonInsufficientFundsForRent, "insufficient_funds_for_rent", BlameSender, false)
	set(bindings.ReasonMaxLoadedAccountsDataSizeExceeded, "max_loaded_accounts_data_size_exceeded", BlameSender, false)
	set(bindings.ReasonInvalidLoadedAccountsDataSizeLimit, "invalid_loaded_accounts_data_size_limit", BlameSender, false)
	set(bindings.ReasonResanitizationNeeded, "resanitization_needed", BlameNone, true)
	set(bindings.ReasonProgramExecutionTemporarilyRestricted, "program_execution_temporarily_restricted", BlameNone, false)
	set(bindings.ReasonUnbalancedTransaction, "unbalanced_transaction", BlameNone, false)
	set(bindings.ReasonProgramCacheHitMaxLimit, "program_cache_hit_max_limit", BlameNone, true)
	return t
}()

// ReasonName returns the snake_case name of a not-included reason
// ("reason_N" for a code this table does not know).
func ReasonName(r bindings.NotIncludedReason) string { return reasonTable[r].name }

// SchedulerMiss reports whether reason r is a miss the scheduler or the
// slot's timing caused (it blames nobody and the transaction may go
// again: account in use, cost limits, no bank, a cancelled batch): the
// reasons a dashboard watches, exported even while they have not
// occurred.
func SchedulerMiss(r bindings.NotIncludedReason) bool {
	row := reasonTable[r]
	return r != bindings.ReasonNone && row.blame == BlameNone && row.retry
}

// Judge maps one execution result to its verdict: included → Credit with
// Value = fee / cost units (fee the transaction's total fee in lamports;
// the reported cost units, or estimate when the response reports none);
// otherwise the reason's row of the table above. An unknown reason code
// blames nobody and is not retried.
func Judge(r ExecResult, fee, estimate uint64) Verdict {
	row := reasonTable[r.Reason]
	if r.Reason == bindings.ReasonNone {
		cost := r.CostUnits
		if cost == 0 {
			cost = estimate
		}
		cost = max(cost, 1)
		return Verdict{Blame: Credit, Value: float64(fee) / float64(cost), Cost: cost}
	}
	return Verdict{Blame: row.blame, Retry: row.retry}
}

// JudgeUnprocessed is the verdict for every transaction of a batch the
// worker did not process: MAX_WORKING_SLOT_EXCEEDED (the slot moved on)
// and INVALID (a malformed message, the scheduler's own fault) blame
// nobody and the transactions may be retried.
func JudgeUnprocessed(processedCode bindings.ProcessedCode) Verdict {
	_ = processedCode
	return Verdict{Blame: BlameNone, Retry: true}
}

// ModelObservation turns a verdict into the observation the model
// (package model) learns from, with learn false when the model should
// not see it (BlameNone):
//
//   - Credit: Fee = the fee, CUs = ExecNanos = Verdict.Cost (executed, so
//     paid: the model's claim and paid value are fee per cost unit; in
//     pack mode the execution-time field carries cost units);
//   - BlameSender: Fee = 0, not executed, SenderFault: the model counts
//     an unpaid outcome at the sender's usual claim, which lowers both
//     the fee payer's and the IP's paid share (the payer's alone once the
//     payer explains it: model.Observation.SenderFault).
func ModelObservation(ip model.IP, payer model.Signer, fee uint64, v Verdict) (obs model.Observation, learn bool) {
	switch v.Blame {
	case Credit:
		return model.Observation{IP: ip, Signer: payer, Fee: fee, CUs: v.Cost, ExecNanos: max(v.Cost, 1)}, true
	case BlameSender:
		return model.Observation{IP: ip, Signer: payer, SenderFault: true}, true
	}
	return model.Observation{}, false
}
