package bindings

import "strconv"

// MaxTransactionsPerMessage bounds a batch (MAX_TRANSACTIONS_PER_MESSAGE);
// the workers answer INVALID to 0 or more.
const MaxTransactionsPerMessage = 64

// LeaderState is ProgressMessage.leader_state.
type LeaderState uint8

const (
	NotLeader      LeaderState = 0 // NOT_LEADER
	LeaderStarting LeaderState = 1 // LEADER_STARTING: leader slot, bank not ready yet
	LeaderReady    LeaderState = 2 // LEADER_READY
)

func (s LeaderState) String() string {
	switch s {
	case NotLeader:
		return "NOT_LEADER"
	case LeaderStarting:
		return "LEADER_STARTING"
	case LeaderReady:
		return "LEADER_READY"
	}
	return "LEADER_STATE(" + strconv.Itoa(int(s)) + ")"
}

// TpuFlags is TpuToPackMessage.flags (tpu_message_flags), the same in every ABI.
type TpuFlags uint8

const (
	TpuNone           TpuFlags = 0
	TpuIsSimpleVote   TpuFlags = 1 << 0
	TpuForwarded      TpuFlags = 1 << 1
	TpuFromStakedNode TpuFlags = 1 << 2
)

// Pack message flags of ABI40 and ABI41 (pack_message_flags): bit 0 chooses
// CHECK (0) or EXECUTE (1); the other bits depend on it.
const (
	PackCheck   uint16 = 0
	PackExecute uint16 = 1
	// execution_flags
	PackDropOnFailure uint16 = 1 << 1
	PackAllOrNothing  uint16 = 1 << 2
	// check_flags
	PackStatusChecks            uint16 = 1 << 1
	PackLoadFeePayerBalance     uint16 = 1 << 2
	PackLoadAddressLookupTables uint16 = 1 << 3
)

// Flags of ABI44's PackToExecutionWorkerMessage (execution_message_flags).
const (
	ExecDropOnFailure uint16 = 1 << 0
	ExecAllOrNothing  uint16 = 1 << 1
)

// Flags of ABI44's PackToCheckWorkerMessage (check_message_flags).
const (
	CheckStatusChecks               uint16 = 1 << 0
	CheckLoadFeePayerBalance        uint16 = 1 << 1
	CheckLoadAddressLookupTables    uint16 = 1 << 2
	CheckCalculateSchedulingDetails uint16 = 1 << 3 // ABI44 only
)

// Check asks for work of a check worker, independent of the ABI's bit layout.
type Check struct {
	StatusChecks               bool
	LoadFeePayerBalance        bool
	LoadAddressLookupTables    bool
	CalculateSchedulingDetails bool // ABI44 only
}

// CheckFlags returns the flags word of a check message for abi: a
// PackToWorker with PackCheck for ABI40/41, a PackToCheckWorker for ABI44.
// Agave rejects a check with no check bit (consume_worker.rs validate_message),
// so does this.
func CheckFlags(abi ABI, c Check) (uint16, error) {
	var f uint16
	switch abi {
	case ABI40, ABI41:
		if c.CalculateSchedulingDetails {
			return 0, ErrNotInABI
		}
		f = PackCheck
		if c.StatusChecks {
			f |= PackStatusChecks
		}
		if c.LoadFeePayerBalance {
			f |= PackLoadFeePayerBalance
		}
		if c.LoadAddressLookupTables {
			f |= PackLoadAddressLookupTables
		}
	case ABI44:
		if c.StatusChecks {
			f |= CheckStatusChecks
		}
		if c.LoadFeePayerBalance {
			f |= CheckLoadFeePayerBalance
		}
		if c.LoadAddressLookupTables {
			f |= CheckLoadAddressLookupTables
		}
		if c.CalculateSchedulingDetails {
			f |= CheckCalculateSchedulingDetails
		}
	default:
		return 0, ErrNotInABI
	}
	if !c.StatusChecks && !c.LoadFeePayerBalance && !c.LoadAddressLookupTables && !c.CalculateSchedulingDetails {
		return 0, ErrNoCheck
	}
	return f, nil
}

// ExecuteFlags returns the flags word of an execution message for abi.
func ExecuteFlags(abi ABI, dropOnFailure, allOrNothing bool) (uint16, error) {
	var f uint16
	switch abi {
	case ABI40, ABI41:
		f = PackExecute
		if dropOnFailure {
			f |= PackDropOnFailure
		}
		if allOrNothing {
			f |= PackAllOrNothing
		}
	case ABI44:
		if dropOnFailure {
			f |= ExecDropOnFailure
		}
		if allOrNothing {
			f |= ExecAllOrNothing
		}
	default:
		return 0, ErrNotInABI
	}
	return f, nil
}

// ProcessedCode is WorkerToPackMessage.processed_code (processed_codes).
// Unless Processed, the message's response region is zero and undefined.
type ProcessedCode uint8

const (
	Processed              ProcessedCode = 0
	Invalid                ProcessedCode = 1
	MaxWorkingSlotExceeded ProcessedCode = 2
)

func (c ProcessedCode) String() string {
	switch c {
	case Processed:
		return "PROCESSED"
	case Invalid:
		return "INVALID"
	case MaxWorkingSlotExceeded:
		return "MAX_WORKING_SLOT_EXCEEDED"
	}
	return "PROCESSED_CODE(" + strconv.Itoa(int(c)) + ")"
}

// ResponseTag is TransactionResponseRegion.tag in ABI40/41. ABI44 has no tag:
// the queue says which response type the region holds, and decoding fills
// the tag in from the queue.
type ResponseTag uint8

const (
	ExecutionResponseTag ResponseTag = 0 // worker_message_types::EXECUTION_RESPONSE
	CheckResponseTag     ResponseTag = 1 // worker_message_types::CHECK_RESPONSE
)

// NotIncludedReason is ExecutionResponse.not_included_reason. 0..3 are
// scheduling outcomes; 64 and up map Solana TransactionError variants.
type NotIncludedReason uint8

// The not_included_reasons of bindings 6.0.0 (agave-sdk 711c4dfc lib.rs);
// PartialBatchCancelled is absent in Agave 4.0's in-tree list and present in
// bindings 5.0.0 (agave-sdk 9a295034).
const (
	ReasonNone                                  NotIncludedReason = 0
	ReasonBankNotAvailable                      NotIncludedReason = 1
	ReasonPartialBatchCancelled                 NotIncludedReason = 2
	ReasonAllOrNothingBatchFailure              NotIncludedReason = 3
	ReasonAccountInUse                          NotIncludedReason = 64
	ReasonAccountLoadedTwice                    NotIncludedReason = 65
	ReasonAccountNotFound                       NotIncludedReason = 66
	ReasonProgramAccountNotFound                NotIncludedReason = 67
	ReasonInsufficientFundsForFee               NotIncludedReason = 68
	ReasonInvalidAccountForFee                  NotIncludedReason = 69
	ReasonAlreadyProcessed                      NotIncludedReason = 70
	ReasonBlockhashNotFound                     NotIncludedReason = 71
	ReasonInstructionError                      NotIncludedReason = 72
	ReasonCallChainTooDeep                      NotIncludedReason = 73
	ReasonMissingSignatureForFee                NotIncludedReason = 74
	ReasonInvalidAccountIndex                   NotIncludedReason = 75
	ReasonSignatureFailure                      NotIncludedReason = 76
	ReasonInvalidProgramForExecution            NotIncludedReason = 77
	ReasonSanitizeFailure                       NotIncludedReason = 78
	ReasonClusterMaintenance                    NotIncludedReason = 79
	ReasonAccountBorrowOutstanding              NotIncludedReason = 80
	ReasonWouldExceedMaxBlockCostLimit          NotIncludedReason = 81
	ReasonUnsupportedVersion                    NotIncludedReason = 82
	ReasonInvalidWritableAccount                NotIncludedReason = 83
	ReasonWouldExceedMaxAccountCostLimit        NotIncludedReason = 84
	ReasonWouldExceedAccountDataBlockLimit      NotIncludedReason = 85
	ReasonTooManyAccountLocks                   NotIncludedReason = 86
	ReasonAddressLookupTableNotFound            NotIncludedReason = 87
	ReasonInvalidAddressLookupTableOwner        NotIncludedReason = 88
	ReasonInvalidAddressLookupTableData         NotIncludedReason = 89
	ReasonInvalidAddressLookupTableIndex        NotIncludedReason = 90
	ReasonInvalidRentPayingAccount              NotIncludedReason = 91
	ReasonWouldExceedMaxVoteCostLimit           NotIncludedReason = 92
	ReasonWouldExceedAccountDataTotalLimit      NotIncludedReason = 93
	ReasonDuplicateInstruction                  NotIncludedReason = 94
	ReasonInsufficientFundsForRent              NotIncludedReason = 95
	ReasonMaxLoadedAccountsDataSizeExceeded     NotIncludedReason = 96
	ReasonInvalidLoadedAccountsDataSizeLimit    NotIncludedReason = 97
	ReasonResanitizationNeeded                  NotIncludedReason = 98
	ReasonProgramExecutionTemporarilyRestricted NotIncludedReason = 99
	ReasonUnbalancedTransaction                 NotIncludedReason = 100
	ReasonProgramCacheHitMaxLimit               NotIncludedReason = 101
)

var lowReasonNames = [...]string{
	"NONE", "BANK_NOT_AVAILABLE", "PARTIAL_BATCH_CANCELLED", "ALL_OR_NOTHING_BATCH_FAILURE",
}

var txErrorReasonNames = [...]string{
	"ACCOUNT_IN_USE", "ACCOUNT_LOADED_TWICE", "ACCOUNT_NOT_FOUND", "PROGRAM_ACCOUNT_NOT_FOUND",
	"INSUFFICIENT_FUNDS_FOR_FEE", "INVALID_ACCOUNT_FOR_FEE", "ALREADY_PROCESSED", "BLOCKHASH_NOT_FOUND",
	"INSTRUCTION_ERROR", "CALL_CHAIN_TOO_DEEP", "MISSING_SIGNATURE_FOR_FEE", "INVALID_ACCOUNT_INDEX",
	"SIGNATURE_FAILURE", "INVALID_PROGRAM_FOR_EXECUTION", "SANITIZE_FAILURE", "CLUSTER_MAINTENANCE",
	"ACCOUNT_BORROW_OUTSTANDING", "WOULD_EXCEED_MAX_BLOCK_COST_LIMIT", "UNSUPPORTED_VERSION",
	"INVALID_WRITABLE_ACCOUNT", "WOULD_EXCEED_MAX_ACCOUNT_COST_LIMIT", "WOULD_EXCEED_ACCOUNT_DATA_BLOCK_LIMIT",
	"TOO_MANY_ACCOUNT_LOCKS", "ADDRESS_LOOKUP_TABLE_NOT_FOUND", "INVALID_ADDRESS_LOOKUP_TABLE_OWNER",
	"INVALID_ADDRESS_LOOKUP_TABLE_DATA", "INVALID_ADDRESS_LOOKUP_TABLE_INDEX", "INVALID_RENT_PAYING_ACCOUNT",
	"WOULD_EXCEED_MAX_VOTE_COST_LIMIT", "WOULD_EXCEED_ACCOUNT_DATA_TOTAL_LIMIT", "DUPLICATE_INSTRUCTION",
	"INSUFFICIENT_FUNDS_FOR_RENT", "MAX_LOADED_ACCOUNTS_DATA_SIZE_EXCEEDED",
	"INVALID_LOADED_ACCOUNTS_DATA_SIZE_LIMIT", "RESANITIZATION_NEEDED",
	"PROGRAM_EXECUTION_TEMPORARILY_RESTRICTED", "UNBALANCED_TRANSACTION", "PROGRAM_CACHE_HIT_MAX_LIMIT",
}

// Known reports whether r is a reason the bindings define.
func (r NotIncludedReason) Known() bool {
	return int(r) < len(lowReasonNames) || (r >= ReasonAccountInUse && int(r-ReasonAccountInUse) < len(txErrorReasonNames))
}

// Included reports whether the transaction made it into the block.
func (r NotIncludedReason) Included() bool { return r == ReasonNone }

// String is the Rust constant's name (e.g. "ACCOUNT_IN_USE"); it does not
// allocate for a known reason.
func (r NotIncludedReason) String() string {
	if int(r) < len(lowReasonNames) {
		return lowReasonNames[r]
	}
	if r >= ReasonAccountInUse && int(r-ReasonAccountInUse) < len(txErrorReasonNames) {
		return txErrorReasonNames[r-ReasonAccountInUse]
	}
	return "NOT_INCLUDED_REASON(" + strconv.Itoa(int(r)) + ")"
}

// Check response flag bytes (worker_message_types).
const (
	// parsing_and_sanitization_flags
	ParseFailed uint8 = 1 << 0

	// status_check_flags
	StatusRequested          uint8 = 1 << 0
	StatusPerformed          uint8 = 1 << 1
	StatusTooOld             uint8 = 1 << 2
	StatusAlreadyProcessed   uint8 = 1 << 3
	StatusInvalidNonce       uint8 = 1 << 4
	StatusUnsupportedVersion uint8 = 1 << 5 // bindings 5.0.0 and 6.0.0

	// fee_payer_balance_flags
	FeePayerBalanceRequested uint8 = 1 << 0
	FeePayerBalancePerformed uint8 = 1 << 1

	// resolve_flags
	ResolveRequested uint8 = 1 << 0
	ResolvePerformed uint8 = 1 << 1
	ResolveFailed    uint8 = 1 << 2

	// scheduling_details_flags (ABI44)
	SchedulingDetailsRequested uint8 = 1 << 0
	SchedulingDetailsPerformed uint8 = 1 << 1
	SchedulingDetailsFailed    uint8 = 1 << 2
)
