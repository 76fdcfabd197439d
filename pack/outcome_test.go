package pack

import (
	"math"
	"testing"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/model"
)

// TestJudgeTable pins the documented mapping of every not-included
// reason Agave 4.0 defines.
func TestJudgeTable(t *testing.T) {
	type row struct {
		reason bindings.NotIncludedReason
		name   string
		blame  Blame
		retry  bool
	}
	const (
		none   = BlameNone
		sender = BlameSender
	)
	rows := []row{
		{bindings.ReasonNone, "none", Credit, false},
		// Scheduler-caused: nobody is blamed, the transaction may go again.
		{bindings.ReasonBankNotAvailable, "bank_not_available", none, true},
		{bindings.ReasonPartialBatchCancelled, "partial_batch_cancelled", none, true},
		{bindings.ReasonAllOrNothingBatchFailure, "all_or_nothing_batch_failure", none, true},
		{bindings.ReasonAccountInUse, "account_in_use", none, true},
		{bindings.ReasonWouldExceedMaxBlockCostLimit, "would_exceed_max_block_cost_limit", none, true},
		{bindings.ReasonWouldExceedMaxAccountCostLimit, "would_exceed_max_account_cost_limit", none, true},
		{bindings.ReasonWouldExceedAccountDataBlockLimit, "would_exceed_account_data_block_limit", none, true},
		{bindings.ReasonWouldExceedMaxVoteCostLimit, "would_exceed_max_vote_cost_limit", none, true},
		{bindings.ReasonResanitizationNeeded, "resanitization_needed", none, true},
		{bindings.ReasonProgramCacheHitMaxLimit, "program_cache_hit_max_limit", none, true},
		// Validator-side: nobody is blamed, the transaction is dropped.
		{bindings.ReasonClusterMaintenance, "cluster_maintenance", none, false},
		{bindings.ReasonWouldExceedAccountDataTotalLimit, "would_exceed_account_data_total_limit", none, false},
		{bindings.ReasonProgramExecutionTemporarilyRestricted, "program_execution_temporarily_restricted", none, false},
		{bindings.ReasonUnbalancedTransaction, "unbalanced_transaction", none, false},
		// Sender-caused: the fee payer and the IP are blamed.
		{bindings.ReasonAccountLoadedTwice, "account_loaded_twice", sender, false},
		{bindings.ReasonAccountNotFound, "account_not_found", sender, false},
		{bindings.ReasonProgramAccountNotFound, "program_account_not_found", sender, false},
		{bindings.ReasonInsufficientFundsForFee, "insufficient_funds_for_fee", sender, false},
		{bindings.ReasonInvalidAccountForFee, "invalid_account_for_fee", sender, false},
		{bindings.ReasonAlreadyProcessed, "already_processed", sender, false},
		{bindings.ReasonBlockhashNotFound, "blockhash_not_found", sender, false},
		{bindings.ReasonInstructionError, "instruction_error", sender, false},
		{bindings.ReasonCallChainTooDeep, "call_chain_too_deep", sender, false},
		{bindings.ReasonMissingSignatureForFee, "missing_signature_for_fee", sender, false},
		{bindings.ReasonInvalidAccountIndex, "invalid_account_index", sender, false},
		{bindings.ReasonSignatureFailure, "signature_failure", sender, false},
		{bindings.ReasonInvalidProgramForExecution, "invalid_program_for_execution", sender, false},
		{bindings.ReasonSanitizeFailure, "sanitize_failure", sender, false},
		{bindings.ReasonAccountBorrowOutstanding, "account_borrow_outstanding", sender, false},
		{bindings.ReasonUnsupportedVersion, "unsupported_version", sender, false},
		{bindings.ReasonInvalidWritableAccount, "invalid_writable_account", sender, false},
		{bindings.ReasonTooManyAccountLocks, "too_many_account_locks", sender, false},
		{bindings.ReasonAddressLookupTableNotFound, "address_lookup_table_not_found", sender, false},
		{bindings.ReasonInvalidAddressLookupTableOwner, "invalid_address_lookup_table_owner", sender, false},
		{bindings.ReasonInvalidAddressLookupTableData, "invalid_address_lookup_table_data", sender, false},
		{bindings.ReasonInvalidAddressLookupTableIndex, "invalid_address_lookup_table_index", sender, false},
		{bindings.ReasonInvalidRentPayingAccount, "invalid_rent_paying_account", sender, false},
		{bindings.ReasonDuplicateInstruction, "duplicate_instruction", sender, false},
		{bindings.ReasonInsufficientFundsForRent, "insufficient_funds_for_rent", sender, false},
		{bindings.ReasonMaxLoadedAccountsDataSizeExceeded, "max_loaded_accounts_data_size_exceeded", sender, false},
		{bindings.ReasonInvalidLoadedAccountsDataSizeLimit, "invalid_loaded_accounts_data_size_limit", sender, false},
	}
	seen := map[bindings.NotIncludedReason]bool{}
	for _, r := range rows {
		seen[r.reason] = true
		if got := ReasonName(r.reason); got != r.name {
			t.Errorf("ReasonName(%d) = %q, want %q", r.reason, got, r.name)
		}
		v := Judge(ExecResult{Reason: r.reason, CostUnits: 1000}, 5000, 2000)
		if v.Blame != r.blame || v.Retry != r.retry {
			t.Errorf("%s: blame %d retry %v, want blame %d retry %v", r.name, v.Blame, v.Retry, r.blame, r.retry)
		}
		if miss := r.blame == none && r.retry; SchedulerMiss(r.reason) != miss {
			t.Errorf("SchedulerMiss(%s) = %v, want %v", r.name, !miss, miss)
		}
	}
	// Every code 0..101 that Agave 4.0 names is in the table above; the
	// rest are unknown: nobody blamed, no retry, a generic name.
	for c := 0; c < 256; c++ {
		r := bindings.NotIncludedReason(c)
		if seen[r] {
			continue
		}
		if (c >= 64 && c <= 101) || c <= 3 {
			t.Errorf("reason %d is named by Agave 4.0 but missing from the test table", c)
		}
		v := Judge(ExecResult{Reason: r}, 5000, 1000)
		if v.Blame != BlameNone || v.Retry {
			t.Errorf("unknown reason %d: %+v", c, v)
		}
		if ReasonName(r) == "" {
			t.Errorf("unknown reason %d has no name", c)
		}
	}
}

func TestJudgeValueAndModelObservation(t *testing.T) {
	ip := model.IPv4([4]byte{10, 0, 0, 1})
	var payer model.Signer
	payer[0] = 7
	tests := []struct {
		name      string
		r         ExecResult
		fee, est  uint64
		wantValue float64
		wantLearn bool
		wantObs   model.Observation
	}{
		{"included: fee per reported cost unit", ExecResult{CostUnits: 2500}, 10_000, 9999, 4, true,
			model.Observation{IP: ip, Signer: payer, Fee: 10_000, CUs: 2500, ExecNanos: 2500}},
		{"included without reported cost: the estimate", ExecResult{}, 10_000, 5000, 2, true,
			model.Observation{IP: ip, Signer: payer, Fee: 10_000, CUs: 5000, ExecNanos: 5000}},
		{"sender fault: an unpaid outcome against both keys", ExecResult{Reason: bindings.ReasonInsufficientFundsForFee}, 10_000, 5000, 0, true,
			model.Observation{IP: ip, Signer: payer, SenderFault: true}},
		{"scheduler miss: not learned", ExecResult{Reason: bindings.ReasonAccountInUse}, 10_000, 5000, 0, false, model.Observation{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.r, tt.fee, tt.est)
			if math.Abs(v.Value-tt.wantValue) > 1e-12 {
				t.Errorf("value %v, want %v", v.Value, tt.wantValue)
			}
			obs, learn := ModelObservation(ip, payer, tt.fee, v)
			if learn != tt.wantLearn || obs != tt.wantObs {
				t.Errorf("ModelObservation = %+v, %v; want %+v, %v", obs, learn, tt.wantObs, tt.wantLearn)
			}
			// What today's model makes of it: a sender fault is worth 0.
			if learn && v.Blame == BlameSender {
				if mv := model.Value(model.DefaultParams(), obs); mv != 0 {
					t.Errorf("model value of a sender fault %v, want 0", mv)
				}
			}
		})
	}
	if v := JudgeUnprocessed(bindings.MaxWorkingSlotExceeded); v.Blame != BlameNone || !v.Retry {
		t.Errorf("max working slot exceeded: %+v", v)
	}
	if v := JudgeUnprocessed(bindings.Invalid); v.Blame != BlameNone || !v.Retry {
		t.Errorf("invalid: %+v", v)
	}
	if s := Outcome(200).String(); s != "outcome_200" {
		t.Errorf("unknown outcome name %q", s)
	}
	for o := Outcome(0); o < numOutcomes; o++ {
		if o.String() == "" {
			t.Errorf("outcome %d has no name", o)
		}
	}
}
