package pack

import (
	"math"
	"testing"

	"github.com/solqos/qos/model"
)

// TestJudgeTable pins the documented mapping of every not-included
// reason Agave 4.0 defines.
func TestJudgeTable(t *testing.T) {
	type row struct {
		reason uint8
		name   string
		blame  Blame
		retry  bool
	}
	const (
		none   = BlameNone
		sender = BlameSender
	)
	rows := []row{
		{ReasonNone, "none", Credit, false},
		// Scheduler-caused: nobody is blamed, the transaction may go again.
		{ReasonBankNotAvailable, "bank_not_available", none, true},
		{ReasonPartialBatchCancelled, "partial_batch_cancelled", none, true},
		{ReasonAllOrNothingBatchFailure, "all_or_nothing_batch_failure", none, true},
		{ReasonAccountInUse, "account_in_use", none, true},
		{ReasonWouldExceedMaxBlockCostLimit, "would_exceed_max_block_cost_limit", none, true},
		{ReasonWouldExceedMaxAccountCostLimit, "would_exceed_max_account_cost_limit", none, true},
		{ReasonWouldExceedAccountDataBlock, "would_exceed_account_data_block_limit", none, true},
		{ReasonWouldExceedMaxVoteCostLimit, "would_exceed_max_vote_cost_limit", none, true},
		{ReasonResanitizationNeeded, "resanitization_needed", none, true},
		{ReasonProgramCacheHitMaxLimit, "program_cache_hit_max_limit", none, true},
		// Validator-side: nobody is blamed, the transaction is dropped.
		{ReasonClusterMaintenance, "cluster_maintenance", none, false},
		{ReasonWouldExceedAccountDataTotal, "would_exceed_account_data_total_limit", none, false},
		{ReasonProgramExecutionRestricted, "program_execution_temporarily_restricted", none, false},
		{ReasonUnbalancedTransaction, "unbalanced_transaction", none, false},
		// Sender-caused: the fee payer and the IP are blamed.
		{ReasonAccountLoadedTwice, "account_loaded_twice", sender, false},
		{ReasonAccountNotFound, "account_not_found", sender, false},
		{ReasonProgramAccountNotFound, "program_account_not_found", sender, false},
		{ReasonInsufficientFundsForFee, "insufficient_funds_for_fee", sender, false},
		{ReasonInvalidAccountForFee, "invalid_account_for_fee", sender, false},
		{ReasonAlreadyProcessed, "already_processed", sender, false},
		{ReasonBlockhashNotFound, "blockhash_not_found", sender, false},
		{ReasonInstructionError, "instruction_error", sender, false},
		{ReasonCallChainTooDeep, "call_chain_too_deep", sender, false},
		{ReasonMissingSignatureForFee, "missing_signature_for_fee", sender, false},
		{ReasonInvalidAccountIndex, "invalid_account_index", sender, false},
		{ReasonSignatureFailure, "signature_failure", sender, false},
		{ReasonInvalidProgramForExecution, "invalid_program_for_execution", sender, false},
		{ReasonSanitizeFailure, "sanitize_failure", sender, false},
		{ReasonAccountBorrowOutstanding, "account_borrow_outstanding", sender, false},
		{ReasonUnsupportedVersion, "unsupported_version", sender, false},
		{ReasonInvalidWritableAccount, "invalid_writable_account", sender, false},
		{ReasonTooManyAccountLocks, "too_many_account_locks", sender, false},
		{ReasonLookupTableNotFound, "address_lookup_table_not_found", sender, false},
		{ReasonInvalidLookupTableOwner, "invalid_address_lookup_table_owner", sender, false},
		{ReasonInvalidLookupTableData, "invalid_address_lookup_table_data", sender, false},
		{ReasonInvalidLookupTableIndex, "invalid_address_lookup_table_index", sender, false},
		{ReasonInvalidRentPayingAccount, "invalid_rent_paying_account", sender, false},
		{ReasonDuplicateInstruction, "duplicate_instruction", sender, false},
		{ReasonInsufficientFundsForRent, "insufficient_funds_for_rent", sender, false},
		{ReasonMaxLoadedAccountsDataSize, "max_loaded_accounts_data_size_exceeded", sender, false},
		{ReasonInvalidLoadedAccountsDataSize, "invalid_loaded_accounts_data_size_limit", sender, false},
	}
	seen := map[uint8]bool{}
	for _, r := range rows {
		seen[r.reason] = true
		if got := ReasonName(r.reason); got != r.name {
			t.Errorf("ReasonName(%d) = %q, want %q", r.reason, got, r.name)
		}
		v := Judge(ExecResult{Reason: r.reason, CostUnits: 1000}, 5000, 2000)
		if v.Blame != r.blame || v.Retry != r.retry {
			t.Errorf("%s: blame %d retry %v, want blame %d retry %v", r.name, v.Blame, v.Retry, r.blame, r.retry)
		}
	}
	// Every code 0..101 that Agave 4.0 names is in the table above; the
	// rest are unknown: nobody blamed, no retry, a generic name.
	for c := 0; c < 256; c++ {
		if seen[uint8(c)] {
			continue
		}
		if (c >= 64 && c <= 101) || c <= 3 {
			t.Errorf("reason %d is named by Agave 4.0 but missing from the test table", c)
		}
		v := Judge(ExecResult{Reason: uint8(c)}, 5000, 1000)
		if v.Blame != BlameNone || v.Retry {
			t.Errorf("unknown reason %d: %+v", c, v)
		}
		if ReasonName(uint8(c)) == "" {
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
		{"sender fault: an unpaid outcome against both keys, at its claim", ExecResult{Reason: ReasonInsufficientFundsForFee}, 10_000, 5000, 0, true,
			model.Observation{IP: ip, Signer: payer, Fee: 10_000, CUs: 5000, SenderFault: true}},
		{"scheduler miss: not learned", ExecResult{Reason: ReasonAccountInUse}, 10_000, 5000, 0, false, model.Observation{}},
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
	if v := JudgeUnprocessed(ProcessedMaxWorkingSlotExceeded); v.Blame != BlameNone || !v.Retry {
		t.Errorf("max working slot exceeded: %+v", v)
	}
	if v := JudgeUnprocessed(ProcessedInvalid); v.Blame != BlameNone || !v.Retry {
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
