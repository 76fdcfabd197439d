package score

// Reject says why a packet was refused; OK (0) means it was not. Each
// reason has its own value so the daemon can count them separately, and a
// stable snake_case name (String) to use as a counter label.
//
// The reasons come in groups, in the order Evaluate checks them: the
// packet record; parsing (rules P1–P7 of docs/solana-wire.md §3, and the
// v1 layout); the v1 switch; sanitizing (S1–S9 and the newer limits);
// the compute-budget instructions; the account locks; the compute-budget
// limits. Only parse failures mean "not a transaction at all".
type Reject uint8

// OK means the packet passed every check.
const OK Reject = 0

// Record checks, before the transaction is looked at.
const (
	// RejectSize: the record's size field exceeds 1232 (or Parse was
	// given more than 1232 bytes).
	RejectSize Reject = iota + 1
	// RejectAddr: the address family tag is neither 0 (IPv4) nor 1 (IPv6).
	RejectAddr
	// RejectDiscard: the validator set the DISCARD flag.
	RejectDiscard

	// Parse failures; Reject.Parse reports true for these.

	// RejectSignatures (P1): the signature count is 0 or above 12, or the
	// signatures are truncated (v1: fewer signature bytes than required
	// signatures after the instructions).
	RejectSignatures
	// RejectVersion (P2): a version Agave does not know: after legacy or
	// v0 signatures, a message prefix other than 0x80; as the first byte
	// (bit 7 set announces v1), anything but 0x81.
	RejectVersion
	// RejectHeader (P2): the version byte or the three header bytes are
	// missing; for v1, the 42-byte fixed prefix or the config values are
	// truncated.
	RejectHeader
	// RejectAccountKeys (P3): the static key count is 0 or above 38, or
	// the keys are truncated (v1: the addresses).
	RejectAccountKeys
	// RejectBlockhash (P4): the recent blockhash is truncated.
	RejectBlockhash
	// RejectInstructions (P5): the instruction section is malformed: a
	// bad or truncated shortvec, fewer than 3 bytes per announced
	// instruction, or a field running past the end (v1: the instruction
	// headers or payloads run past the end).
	RejectInstructions
	// RejectLookups (P6): the v0 address-table lookup section is
	// malformed: more than 31 lookups, fewer than 35 bytes per announced
	// lookup, a bad shortvec or a field running past the end.
	RejectLookups
	// RejectTrailing (P7): bytes follow the end of the transaction.
	RejectTrailing

	// Sanitize failures (well-formed but invalid transactions).

	// RejectSignatureCount (S1): the signature count differs from the
	// header's number of required signatures.
	RejectSignatureCount
	// RejectSignerKeys (S2): fewer static keys than signatures.
	RejectSignerKeys
	// RejectReadonlyUnsigned (S3): more readonly unsigned accounts than
	// unsigned static keys.
	RejectReadonlyUnsigned
	// RejectReadonlySigned (S4): no signer, or every signer is readonly,
	// so the fee payer is not a writable signer.
	RejectReadonlySigned
	// RejectAccountCount (S5): static keys plus lookup indexes exceed 256
	// (v1: more than 64 addresses).
	RejectAccountCount
	// RejectProgramIndex (S6): an instruction's program index is not a
	// static key.
	RejectProgramIndex
	// RejectProgramFeePayer (S7): an instruction's program index is 0,
	// the fee payer.
	RejectProgramFeePayer
	// RejectAccountIndex (S8): an instruction account index is beyond the
	// last account.
	RejectAccountIndex
	// RejectEmptyLookup (S9): an address-table lookup with no writable
	// and no readonly index.
	RejectEmptyLookup

	// Compute-budget failures (Agave rejects the transaction).

	// RejectBudgetData: a compute-budget instruction with an unknown
	// discriminant, empty data or a short payload (InvalidInstructionData).
	RejectBudgetData
	// RejectBudgetDuplicate: a second compute-budget instruction of a
	// kind already seen (DuplicateInstruction).
	RejectBudgetDuplicate
	// RejectBudgetHeap: a requested heap frame outside 32 KiB..256 KiB
	// or not a multiple of 1 KiB (InvalidInstructionData; for v1 a
	// sanitize failure of its config).
	RejectBudgetHeap
	// RejectBudgetLoadedSize: a loaded-accounts data size limit of 0
	// (InvalidLoadedAccountsDataSizeLimit).
	RejectBudgetLoadedSize

	// Reasons added with current Agave's rules (appended so that the
	// values above keep their numbers). Each is a refusal of a well-formed
	// transaction, never held against the sender's IP.

	// RejectInstructionCount (sanitize, SIMD-0160): more than 64
	// instructions.
	RejectInstructionCount
	// RejectInstructionAccounts (sanitize, SIMD-0406): an instruction with
	// more than 255 account indexes.
	RejectInstructionAccounts
	// RejectSignatureLimit (sanitize, v1): more than 12 signatures.
	RejectSignatureLimit
	// RejectV1Config (sanitize, v1): the transaction-config mask sets a
	// bit Agave does not know (5 and above), or only one of the two
	// priority-fee bits (0 and 1).
	RejectV1Config
	// RejectTooManyAccountLocks (account locks): static keys plus lookup
	// indexes exceed the account-lock limit (TooManyAccountLocks).
	RejectTooManyAccountLocks
	// RejectAccountLoadedTwice (account locks): the same static key
	// appears twice (AccountLoadedTwice).
	RejectAccountLoadedTwice
	// RejectV1Disabled: a well-formed v1 transaction while v1 is switched
	// off (--tx-v1=false).
	RejectV1Disabled

	numRejects
)

// NumRejects is the number of Reject values, OK included: counter arrays
// are indexed by Reject and sized NumRejects.
const NumRejects = int(numRejects)

var rejectNames = [NumRejects]string{
	OK:                     "ok",
	RejectSize:             "record_size",
	RejectAddr:             "record_addr",
	RejectDiscard:          "record_discard",
	RejectSignatures:       "parse_signatures",
	RejectVersion:          "parse_version",
	RejectHeader:           "parse_header",
	RejectAccountKeys:      "parse_account_keys",
	RejectBlockhash:        "parse_blockhash",
	RejectInstructions:     "parse_instructions",
	RejectLookups:          "parse_lookups",
	RejectTrailing:         "parse_trailing",
	RejectSignatureCount:   "sanitize_signature_count",
	RejectSignerKeys:       "sanitize_signer_keys",
	RejectReadonlyUnsigned: "sanitize_readonly_unsigned",
	RejectReadonlySigned:   "sanitize_readonly_signed",
	RejectAccountCount:     "sanitize_account_count",
	RejectProgramIndex:     "sanitize_program_index",
	RejectProgramFeePayer:  "sanitize_program_fee_payer",
	RejectAccountIndex:     "sanitize_account_index",
	RejectEmptyLookup:      "sanitize_empty_lookup",
	RejectBudgetData:       "budget_invalid_data",
	RejectBudgetDuplicate:  "budget_duplicate",
	RejectBudgetHeap:       "budget_heap_size",
	RejectBudgetLoadedSize: "budget_loaded_size",

	RejectInstructionCount:    "sanitize_instruction_count",
	RejectInstructionAccounts: "sanitize_instruction_accounts",
	RejectSignatureLimit:      "sanitize_signature_limit",
	RejectV1Config:            "sanitize_v1_config",
	RejectTooManyAccountLocks: "lock_too_many_accounts",
	RejectAccountLoadedTwice:  "lock_account_loaded_twice",
	RejectV1Disabled:          "format_v1_disabled",
}

// Classes of reasons, for the predicates below.
const (
	classNone uint8 = iota
	classRecord
	classParse
	classSanitize
	classBudget
	classLock
	classFormat
)

var rejectClass = [NumRejects]uint8{
	RejectSize: classRecord, RejectAddr: classRecord, RejectDiscard: classRecord,

	RejectSignatures: classParse, RejectVersion: classParse, RejectHeader: classParse,
	RejectAccountKeys: classParse, RejectBlockhash: classParse, RejectInstructions: classParse,
	RejectLookups: classParse, RejectTrailing: classParse,

	RejectSignatureCount: classSanitize, RejectSignerKeys: classSanitize,
	RejectReadonlyUnsigned: classSanitize, RejectReadonlySigned: classSanitize,
	RejectAccountCount: classSanitize, RejectProgramIndex: classSanitize,
	RejectProgramFeePayer: classSanitize, RejectAccountIndex: classSanitize,
	RejectEmptyLookup: classSanitize, RejectInstructionCount: classSanitize,
	RejectInstructionAccounts: classSanitize, RejectSignatureLimit: classSanitize,
	RejectV1Config: classSanitize,

	RejectBudgetData: classBudget, RejectBudgetDuplicate: classBudget,
	RejectBudgetHeap: classBudget, RejectBudgetLoadedSize: classBudget,

	RejectTooManyAccountLocks: classLock, RejectAccountLoadedTwice: classLock,

	RejectV1Disabled: classFormat,
}

func (r Reject) class() uint8 {
	if int(r) < NumRejects {
		return rejectClass[r]
	}
	return classNone
}

// String returns the reason's stable snake_case name, or "unknown" for a
// value out of range.
func (r Reject) String() string {
	if int(r) < NumRejects {
		return rejectNames[r]
	}
	return "unknown"
}

// Parse reports whether r is a parse failure (P1–P7): bytes that cannot
// be a transaction in any format Agave reads, which the daemon holds
// against the source IP. Every other reason refuses a well-formed
// transaction (or a bad record) and carries no penalty.
func (r Reject) Parse() bool { return r.class() == classParse }

// Sanitize reports whether r is a sanitize failure (S1–S9 and the
// instruction, account and signature limits of current Agave).
func (r Reject) Sanitize() bool { return r.class() == classSanitize }

// Budget reports whether r is a compute-budget failure.
func (r Reject) Budget() bool { return r.class() == classBudget }

// Locks reports whether r is an account-lock failure
// (TooManyAccountLocks, AccountLoadedTwice).
func (r Reject) Locks() bool { return r.class() == classLock }

// Format reports whether r refuses a transaction format that is switched
// off.
func (r Reject) Format() bool { return r.class() == classFormat }

// Record reports whether r is a packet-record failure.
func (r Reject) Record() bool { return r.class() == classRecord }
