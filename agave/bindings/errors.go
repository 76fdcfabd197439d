package bindings

import "errors"

// Decoding and region errors. They are returned bare, so a decode never
// allocates; callers wrap them with the queue or file they read, e.g.
// fmt.Errorf("agave worker_to_pack[%d]: %w", i, err).
var (
	// ErrShortBuffer: the slot or buffer is smaller than the message.
	ErrShortBuffer = errors.New("buffer shorter than the message layout")
	// ErrNotInABI: the message, field or flag does not exist in this ABI, or the ABI is unknown.
	ErrNotInABI = errors.New("not part of this Agave ABI")
	// ErrBadTag: a response region's tag is neither EXECUTION_RESPONSE nor CHECK_RESPONSE,
	// or not the one the caller asked for.
	ErrBadTag = errors.New("response region has an unexpected tag")
	// ErrOutOfBounds: an offset/length in a message points outside the allocator mapping.
	ErrOutOfBounds = errors.New("region lies outside the allocator mapping")
	// ErrIndex: an element index at or beyond the region's count.
	ErrIndex = errors.New("index beyond the region's element count")
	// ErrTooManyTransactions: a batch of 0 or more than MaxTransactionsPerMessage transactions.
	ErrTooManyTransactions = errors.New("batch must hold 1..64 transactions")
	// ErrNoCheck: a check message that asks for no check.
	ErrNoCheck = errors.New("check message requests no check")
)
