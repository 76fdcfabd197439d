package standin

import "github.com/solqos/qos/agave/bindings"

// Reason is a not-included reason of an execution response.
type Reason = bindings.NotIncludedReason

// The reasons the stand-in's bank and workers produce (the bindings'
// numbers).
const (
	ReasonNone                           = bindings.ReasonNone
	ReasonBankNotAvailable               = bindings.ReasonBankNotAvailable
	ReasonAllOrNothingBatchFailure       = bindings.ReasonAllOrNothingBatchFailure
	ReasonAccountInUse                   = bindings.ReasonAccountInUse
	ReasonAccountNotFound                = bindings.ReasonAccountNotFound
	ReasonInsufficientFundsForFee        = bindings.ReasonInsufficientFundsForFee
	ReasonAlreadyProcessed               = bindings.ReasonAlreadyProcessed
	ReasonBlockhashNotFound              = bindings.ReasonBlockhashNotFound
	ReasonSanitizeFailure                = bindings.ReasonSanitizeFailure
	ReasonWouldExceedMaxBlockCostLimit   = bindings.ReasonWouldExceedMaxBlockCostLimit
	ReasonWouldExceedMaxAccountCostLimit = bindings.ReasonWouldExceedMaxAccountCostLimit
	ReasonAddressLookupTableNotFound     = bindings.ReasonAddressLookupTableNotFound
)
