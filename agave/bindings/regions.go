package bindings

// Helpers that follow a message's offsets into the allocator mapping. mem is
// the whole mapping (offsets count from its first byte). Every offset and
// length is checked against len(mem) without overflow, so a hostile or
// corrupt message yields ErrOutOfBounds, never a read outside mem.

// span returns mem[off:off+n] or ErrOutOfBounds.
func span(mem []byte, off, n uint64) ([]byte, error) {
	l := uint64(len(mem))
	if off > l || n > l-off {
		return nil, ErrOutOfBounds
	}
	return mem[off : off+n : off+n], nil
}

// Bytes returns the transaction's bytes inside mem.
func (r SharableTransactionRegion) Bytes(mem []byte) ([]byte, error) {
	return span(mem, r.Offset, uint64(r.Length))
}

// Validate checks that the batch holds 1..64 transactions and that its
// array lies inside mem (the entries themselves are checked by Bytes).
func (b SharableTransactionBatchRegion) Validate(mem []byte) error {
	if b.NumTransactions == 0 || b.NumTransactions > MaxTransactionsPerMessage {
		return ErrTooManyTransactions
	}
	_, err := span(mem, b.TransactionsOffset, uint64(b.NumTransactions)*RegionSize)
	return err
}

// ArraySize is the size in bytes of the batch's region array.
func (b SharableTransactionBatchRegion) ArraySize() int { return int(b.NumTransactions) * RegionSize }

// At reads the i-th SharableTransactionRegion of the batch array.
func (b SharableTransactionBatchRegion) At(mem []byte, i int) (SharableTransactionRegion, error) {
	if i < 0 || i >= int(b.NumTransactions) {
		return SharableTransactionRegion{}, ErrIndex
	}
	e, err := span(mem, b.TransactionsOffset, uint64(i+1)*RegionSize)
	if err != nil {
		return SharableTransactionRegion{}, err
	}
	return DecodeSharableTransactionRegion(e[i*RegionSize:])
}

// Put writes the i-th SharableTransactionRegion of the batch array.
func (b SharableTransactionBatchRegion) Put(mem []byte, i int, r SharableTransactionRegion) error {
	if i < 0 || i >= int(b.NumTransactions) {
		return ErrIndex
	}
	e, err := span(mem, b.TransactionsOffset, uint64(i+1)*RegionSize)
	if err != nil {
		return err
	}
	return r.Encode(e[i*RegionSize:])
}

// responseAt returns the bytes of response i of size sz.
func (r TransactionResponseRegion) responseAt(mem []byte, i, sz int) ([]byte, error) {
	if i < 0 || i >= int(r.NumTransactionResponses) {
		return nil, ErrIndex
	}
	e, err := span(mem, r.TransactionResponsesOffset, uint64(i+1)*uint64(sz))
	if err != nil {
		return nil, err
	}
	return e[i*sz:], nil
}

// ArraySize is the size in bytes of the response array in abi.
func (r TransactionResponseRegion) ArraySize(abi ABI) int {
	if r.Tag == CheckResponseTag {
		return int(r.NumTransactionResponses) * CheckResponseSize(abi)
	}
	return int(r.NumTransactionResponses) * ExecutionResponseSize
}

// ExecutionResponse reads response i; the region must hold execution responses.
func (r TransactionResponseRegion) ExecutionResponse(mem []byte, i int) (ExecutionResponse, error) {
	if r.Tag != ExecutionResponseTag {
		return ExecutionResponse{}, ErrBadTag
	}
	e, err := r.responseAt(mem, i, ExecutionResponseSize)
	if err != nil {
		return ExecutionResponse{}, err
	}
	return DecodeExecutionResponse(e)
}

// PutExecutionResponse writes response i; the region must hold execution responses.
func (r TransactionResponseRegion) PutExecutionResponse(mem []byte, i int, resp ExecutionResponse) error {
	if r.Tag != ExecutionResponseTag {
		return ErrBadTag
	}
	e, err := r.responseAt(mem, i, ExecutionResponseSize)
	if err != nil {
		return err
	}
	return resp.Encode(e)
}

// CheckResponse reads response i of abi; the region must hold check responses.
func (r TransactionResponseRegion) CheckResponse(abi ABI, mem []byte, i int) (CheckResponse, error) {
	if r.Tag != CheckResponseTag {
		return CheckResponse{}, ErrBadTag
	}
	sz := CheckResponseSize(abi)
	if sz == 0 {
		return CheckResponse{}, ErrNotInABI
	}
	e, err := r.responseAt(mem, i, sz)
	if err != nil {
		return CheckResponse{}, err
	}
	return DecodeCheckResponse(abi, e)
}

// PutCheckResponse writes response i of abi; the region must hold check responses.
func (r TransactionResponseRegion) PutCheckResponse(abi ABI, mem []byte, i int, resp CheckResponse) error {
	if r.Tag != CheckResponseTag {
		return ErrBadTag
	}
	sz := CheckResponseSize(abi)
	if sz == 0 {
		return ErrNotInABI
	}
	e, err := r.responseAt(mem, i, sz)
	if err != nil {
		return err
	}
	return resp.Encode(abi, e)
}

// Pubkey returns the i-th resolved key.
func (p SharablePubkeys) Pubkey(mem []byte, i int) ([PubkeySize]byte, error) {
	var k [PubkeySize]byte
	if i < 0 || uint64(i) >= uint64(p.NumPubkeys) {
		return k, ErrIndex
	}
	e, err := span(mem, p.Offset, uint64(i+1)*PubkeySize)
	if err != nil {
		return k, err
	}
	copy(k[:], e[i*PubkeySize:])
	return k, nil
}

// Bytes returns the whole key array (32·NumPubkeys bytes).
func (p SharablePubkeys) Bytes(mem []byte) ([]byte, error) {
	return span(mem, p.Offset, uint64(p.NumPubkeys)*PubkeySize)
}
