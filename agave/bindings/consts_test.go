package bindings

import (
	"errors"
	"strings"
	"testing"
)

func TestNotIncludedReasonNames(t *testing.T) {
	// Values and names from agave-sdk 711c4dfc scheduler-bindings/src/lib.rs.
	want := map[NotIncludedReason]string{
		0: "NONE", 1: "BANK_NOT_AVAILABLE", 2: "PARTIAL_BATCH_CANCELLED", 3: "ALL_OR_NOTHING_BATCH_FAILURE",
		64: "ACCOUNT_IN_USE", 65: "ACCOUNT_LOADED_TWICE", 66: "ACCOUNT_NOT_FOUND", 67: "PROGRAM_ACCOUNT_NOT_FOUND",
		68: "INSUFFICIENT_FUNDS_FOR_FEE", 69: "INVALID_ACCOUNT_FOR_FEE", 70: "ALREADY_PROCESSED",
		71: "BLOCKHASH_NOT_FOUND", 72: "INSTRUCTION_ERROR", 73: "CALL_CHAIN_TOO_DEEP", 74: "MISSING_SIGNATURE_FOR_FEE",
		75: "INVALID_ACCOUNT_INDEX", 76: "SIGNATURE_FAILURE", 77: "INVALID_PROGRAM_FOR_EXECUTION",
		78: "SANITIZE_FAILURE", 79: "CLUSTER_MAINTENANCE", 80: "ACCOUNT_BORROW_OUTSTANDING",
		81: "WOULD_EXCEED_MAX_BLOCK_COST_LIMIT", 82: "UNSUPPORTED_VERSION", 83: "INVALID_WRITABLE_ACCOUNT",
		84: "WOULD_EXCEED_MAX_ACCOUNT_COST_LIMIT", 85: "WOULD_EXCEED_ACCOUNT_DATA_BLOCK_LIMIT",
		86: "TOO_MANY_ACCOUNT_LOCKS", 87: "ADDRESS_LOOKUP_TABLE_NOT_FOUND", 88: "INVALID_ADDRESS_LOOKUP_TABLE_OWNER",
		89: "INVALID_ADDRESS_LOOKUP_TABLE_DATA", 90: "INVALID_ADDRESS_LOOKUP_TABLE_INDEX",
		91: "INVALID_RENT_PAYING_ACCOUNT", 92: "WOULD_EXCEED_MAX_VOTE_COST_LIMIT",
		93: "WOULD_EXCEED_ACCOUNT_DATA_TOTAL_LIMIT", 94: "DUPLICATE_INSTRUCTION", 95: "INSUFFICIENT_FUNDS_FOR_RENT",
		96: "MAX_LOADED_ACCOUNTS_DATA_SIZE_EXCEEDED", 97: "INVALID_LOADED_ACCOUNTS_DATA_SIZE_LIMIT",
		98: "RESANITIZATION_NEEDED", 99: "PROGRAM_EXECUTION_TEMPORARILY_RESTRICTED", 100: "UNBALANCED_TRANSACTION",
		101: "PROGRAM_CACHE_HIT_MAX_LIMIT",
	}
	for v := 0; v < 256; v++ {
		r := NotIncludedReason(v)
		name, known := want[r]
		if r.Known() != known {
			t.Errorf("%d: Known() = %v, want %v", v, r.Known(), known)
		}
		if known && r.String() != name {
			t.Errorf("%d: String() = %q, want %q", v, r.String(), name)
		}
		if !known && !strings.HasPrefix(r.String(), "NOT_INCLUDED_REASON(") {
			t.Errorf("%d: String() = %q for an unknown reason", v, r.String())
		}
	}
	if !ReasonNone.Included() || ReasonAccountInUse.Included() {
		t.Error("Included() wrong")
	}
	if ReasonWouldExceedMaxAccountCostLimit != 84 || ReasonAddressLookupTableNotFound != 87 || ReasonProgramCacheHitMaxLimit != 101 {
		t.Error("reason constants drifted from the bindings")
	}
}

func TestConstantValues(t *testing.T) {
	// tpu_message_flags, leader states, processed codes, check-response flag bytes.
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"IS_SIMPLE_VOTE", uint64(TpuIsSimpleVote), 1}, {"FORWARDED", uint64(TpuForwarded), 2},
		{"FROM_STAKED_NODE", uint64(TpuFromStakedNode), 4},
		{"NOT_LEADER", uint64(NotLeader), 0}, {"LEADER_STARTING", uint64(LeaderStarting), 1}, {"LEADER_READY", uint64(LeaderReady), 2},
		{"PROCESSED", uint64(Processed), 0}, {"INVALID", uint64(Invalid), 1}, {"MAX_WORKING_SLOT_EXCEEDED", uint64(MaxWorkingSlotExceeded), 2},
		{"pack CHECK", uint64(PackCheck), 0}, {"pack EXECUTE", uint64(PackExecute), 1},
		{"pack DROP_ON_FAILURE", uint64(PackDropOnFailure), 2}, {"pack ALL_OR_NOTHING", uint64(PackAllOrNothing), 4},
		{"pack STATUS_CHECKS", uint64(PackStatusChecks), 2}, {"pack LOAD_FEE_PAYER_BALANCE", uint64(PackLoadFeePayerBalance), 4},
		{"pack LOAD_ADDRESS_LOOKUP_TABLES", uint64(PackLoadAddressLookupTables), 8},
		{"exec DROP_ON_FAILURE", uint64(ExecDropOnFailure), 1}, {"exec ALL_OR_NOTHING", uint64(ExecAllOrNothing), 2},
		{"check STATUS_CHECKS", uint64(CheckStatusChecks), 1}, {"check LOAD_FEE_PAYER_BALANCE", uint64(CheckLoadFeePayerBalance), 2},
		{"check LOAD_ADDRESS_LOOKUP_TABLES", uint64(CheckLoadAddressLookupTables), 4},
		{"check CALCULATE_SCHEDULING_DETAILS", uint64(CheckCalculateSchedulingDetails), 8},
		{"parse FAILED", uint64(ParseFailed), 1},
		{"status REQUESTED", uint64(StatusRequested), 1}, {"status PERFORMED", uint64(StatusPerformed), 2},
		{"status TOO_OLD", uint64(StatusTooOld), 4}, {"status ALREADY_PROCESSED", uint64(StatusAlreadyProcessed), 8},
		{"status INVALID_NONCE", uint64(StatusInvalidNonce), 16}, {"status UNSUPPORTED_VERSION", uint64(StatusUnsupportedVersion), 32},
		{"fee REQUESTED", uint64(FeePayerBalanceRequested), 1}, {"fee PERFORMED", uint64(FeePayerBalancePerformed), 2},
		{"resolve REQUESTED", uint64(ResolveRequested), 1}, {"resolve PERFORMED", uint64(ResolvePerformed), 2},
		{"resolve FAILED", uint64(ResolveFailed), 4},
		{"sched REQUESTED", uint64(SchedulingDetailsRequested), 1}, {"sched PERFORMED", uint64(SchedulingDetailsPerformed), 2},
		{"sched FAILED", uint64(SchedulingDetailsFailed), 4},
		{"EXECUTION_RESPONSE", uint64(ExecutionResponseTag), 0}, {"CHECK_RESPONSE", uint64(CheckResponseTag), 1},
		{"MAX_TRANSACTIONS_PER_MESSAGE", MaxTransactionsPerMessage, 64},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if LeaderReady.String() != "LEADER_READY" || MaxWorkingSlotExceeded.String() != "MAX_WORKING_SLOT_EXCEEDED" {
		t.Error("String names wrong")
	}
}

func TestFlagHelpers(t *testing.T) {
	all := Check{StatusChecks: true, LoadFeePayerBalance: true, LoadAddressLookupTables: true}
	for _, c := range []struct {
		abi     ABI
		check   Check
		want    uint16
		wantErr error
	}{
		{ABI40, all, 2 | 4 | 8, nil},
		{ABI41, Check{StatusChecks: true}, 2, nil},
		{ABI44, all, 1 | 2 | 4, nil},
		{ABI44, Check{CalculateSchedulingDetails: true}, 8, nil},
		{ABI41, Check{CalculateSchedulingDetails: true}, 0, ErrNotInABI},
		{ABI44, Check{}, 0, ErrNoCheck},
		{ABI40, Check{}, 0, ErrNoCheck},
		{0, all, 0, ErrNotInABI},
	} {
		got, err := CheckFlags(c.abi, c.check)
		if !errors.Is(err, c.wantErr) || got != c.want {
			t.Errorf("CheckFlags(%v, %+v) = %#x, %v; want %#x, %v", c.abi, c.check, got, err, c.want, c.wantErr)
		}
	}
	for _, c := range []struct {
		abi       ABI
		drop, aon bool
		want      uint16
	}{{ABI40, false, false, 1}, {ABI40, true, true, 7}, {ABI41, false, true, 5}, {ABI44, true, false, 1}, {ABI44, true, true, 3}, {ABI44, false, false, 0}} {
		got, err := ExecuteFlags(c.abi, c.drop, c.aon)
		if err != nil || got != c.want {
			t.Errorf("ExecuteFlags(%v, %v, %v) = %#x, %v; want %#x", c.abi, c.drop, c.aon, got, err, c.want)
		}
	}
	if _, err := ExecuteFlags(0, true, true); !errors.Is(err, ErrNotInABI) {
		t.Errorf("ExecuteFlags(0): %v", err)
	}
}
