package standin

// Reason is a not-included reason of an execution response: the numbers
// of agave_scheduler_bindings' not_included_reasons (Agave 4.0, read from
// v4.0.0-rc.0 scheduler-bindings/src/lib.rs as quoted in
// shared/research/agave-external-scheduler.md §4.1). Only the reasons
// this bank can produce are named.
type Reason uint8

// Reasons the stand-in's bank and workers produce.
const (
	ReasonNone                 Reason = 0
	ReasonBankNotAvailable     Reason = 1
	ReasonAllOrNothingFailure  Reason = 3
	ReasonAccountInUse         Reason = 64
	ReasonAccountLoadedTwice   Reason = 65
	ReasonAccountNotFound      Reason = 66
	ReasonInsufficientFunds    Reason = 68
	ReasonAlreadyProcessed     Reason = 70
	ReasonBlockhashNotFound    Reason = 71
	ReasonSanitizeFailure      Reason = 78
	ReasonWouldExceedBlockCost Reason = 81
	ReasonWouldExceedAcctCost  Reason = 84
	ReasonTooManyAccountLocks  Reason = 86
	ReasonALTNotFound          Reason = 87
)

// reasonSlots is the size of per-reason counter arrays (every u8).
const reasonSlots = 256

// String returns the reason's Agave name.
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "NONE"
	case ReasonBankNotAvailable:
		return "BANK_NOT_AVAILABLE"
	case ReasonAllOrNothingFailure:
		return "ALL_OR_NOTHING_BATCH_FAILURE"
	case ReasonAccountInUse:
		return "ACCOUNT_IN_USE"
	case ReasonAccountLoadedTwice:
		return "ACCOUNT_LOADED_TWICE"
	case ReasonAccountNotFound:
		return "ACCOUNT_NOT_FOUND"
	case ReasonInsufficientFunds:
		return "INSUFFICIENT_FUNDS_FOR_FEE"
	case ReasonAlreadyProcessed:
		return "ALREADY_PROCESSED"
	case ReasonBlockhashNotFound:
		return "BLOCKHASH_NOT_FOUND"
	case ReasonSanitizeFailure:
		return "SANITIZE_FAILURE"
	case ReasonWouldExceedBlockCost:
		return "WOULD_EXCEED_MAX_BLOCK_COST_LIMIT"
	case ReasonWouldExceedAcctCost:
		return "WOULD_EXCEED_MAX_ACCOUNT_COST_LIMIT"
	case ReasonTooManyAccountLocks:
		return "TOO_MANY_ACCOUNT_LOCKS"
	case ReasonALTNotFound:
		return "ADDRESS_LOOKUP_TABLE_NOT_FOUND"
	}
	return "REASON_" + itoa(uint64(r))
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
