package bindings

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// field is one expected field: width bytes at off hold val (little endian).
type field struct {
	name  string
	off   int
	width int // 1, 2, 4, 8; 16/32 for byte arrays filled with val's low byte
	val   uint64
}

// goldenCase writes msg with encode and checks size and every offset from
// docs/agave-external-scheduler.md §4, then decodes it back.
type goldenCase struct {
	name   string
	abi    ABI
	size   int
	fields []field
	encode func(b []byte) error
	decode func(b []byte) (any, error)
	want   any
}

func fill(n int, v byte) (a [32]byte) {
	for i := 0; i < n; i++ {
		a[i] = v
	}
	return a
}

func addr(v byte) (a [16]byte) {
	f := fill(16, v)
	copy(a[:], f[:16])
	return a
}

func goldenCases() []goldenCase {
	var cs []goldenCase
	tr := SharableTransactionRegion{Offset: 0x1111_2222_3333_4444, Length: 0x5555_6666}
	cs = append(cs, goldenCase{
		name: "SharableTransactionRegion", size: 16,
		fields: []field{{"offset", 0, 8, tr.Offset}, {"length", 8, 4, uint64(tr.Length)}},
		encode: tr.Encode, want: tr,
		decode: func(b []byte) (any, error) { return DecodeSharableTransactionRegion(b) },
	})
	pk := SharablePubkeys{Offset: 0x0102_0304_0506_0708, NumPubkeys: 9}
	cs = append(cs, goldenCase{
		name: "SharablePubkeys", size: 16,
		fields: []field{{"offset", 0, 8, pk.Offset}, {"num_pubkeys", 8, 4, 9}},
		encode: pk.Encode, want: pk,
		decode: func(b []byte) (any, error) { return DecodeSharablePubkeys(b) },
	})
	br := SharableTransactionBatchRegion{NumTransactions: 64, TransactionsOffset: 0xABCD_EF01_2345}
	cs = append(cs, goldenCase{
		name: "SharableTransactionBatchRegion", size: 16,
		fields: []field{{"num_transactions", 0, 1, 64}, {"transactions_offset", 8, 8, br.TransactionsOffset}},
		encode: br.Encode, want: br,
		decode: func(b []byte) (any, error) { return DecodeSharableTransactionBatchRegion(b) },
	})
	tpu := TpuToPack{Transaction: tr, Flags: TpuIsSimpleVote | TpuFromStakedNode, SrcAddr: addr(0x7F)}
	cs = append(cs, goldenCase{
		name: "TpuToPackMessage", size: 40,
		fields: []field{{"transaction.offset", 0, 8, tr.Offset}, {"transaction.length", 8, 4, uint64(tr.Length)},
			{"flags", 16, 1, 5}, {"src_addr", 17, 16, 0x7F}},
		encode: tpu.Encode, want: tpu,
		decode: func(b []byte) (any, error) { return DecodeTpuToPack(b) },
	})
	ptw := PackToWorker{Flags: PackExecute | PackAllOrNothing, MaxWorkingSlot: 0xDEAD_BEEF, Batch: br}
	cs = append(cs, goldenCase{
		name: "PackToWorkerMessage", size: 32,
		fields: []field{{"flags", 0, 2, 5}, {"max_working_slot", 8, 8, 0xDEAD_BEEF},
			{"batch.num_transactions", 16, 1, 64}, {"batch.transactions_offset", 24, 8, br.TransactionsOffset}},
		encode: ptw.Encode, want: ptw,
		decode: func(b []byte) (any, error) { return DecodePackToWorker(b) },
	})
	pcw := PackToCheckWorker{Flags: CheckStatusChecks | CheckCalculateSchedulingDetails, Batch: br}
	cs = append(cs, goldenCase{
		name: "PackToCheckWorkerMessage", abi: ABI44, size: 24,
		fields: []field{{"flags", 0, 2, 9}, {"batch.num_transactions", 8, 1, 64}, {"batch.transactions_offset", 16, 8, br.TransactionsOffset}},
		encode: func(b []byte) error { return pcw.Encode(ABI44, b) }, want: pcw,
		decode: func(b []byte) (any, error) { return DecodePackToCheckWorker(ABI44, b) },
	})
	er := ExecutionResponse{ExecutionSlot: 0x0A0B_0C0D, NotIncludedReason: ReasonWouldExceedMaxAccountCostLimit, CostUnits: 1_400_000, FeePayerBalance: 0xFFFF_FFFF_FFFF}
	cs = append(cs, goldenCase{
		name: "ExecutionResponse", size: 32,
		fields: []field{{"execution_slot", 0, 8, er.ExecutionSlot}, {"not_included_reason", 8, 1, 84},
			{"cost_units", 16, 8, er.CostUnits}, {"fee_payer_balance", 24, 8, er.FeePayerBalance}},
		encode: er.Encode, want: er,
		decode: func(b []byte) (any, error) { return DecodeExecutionResponse(b) },
	})
	for _, abi := range []ABI{ABI40, ABI41} {
		rr := TransactionResponseRegion{Tag: CheckResponseTag, NumTransactionResponses: 33, TransactionResponsesOffset: 0x4000}
		cs = append(cs, goldenCase{
			name: "TransactionResponseRegion", abi: abi, size: 16,
			fields: []field{{"tag", 0, 1, 1}, {"num_transaction_responses", 1, 1, 33}, {"transaction_responses_offset", 8, 8, 0x4000}},
			encode: func(b []byte) error { return rr.Encode(abi, b) }, want: rr,
			decode: func(b []byte) (any, error) { return DecodeTransactionResponseRegion(abi, 0xEE, b) },
		})
		w := WorkerToPack{Batch: br, ProcessedCode: MaxWorkingSlotExceeded, Responses: rr}
		cs = append(cs, goldenCase{
			name: "WorkerToPackMessage", abi: abi, size: 40,
			fields: []field{{"batch.num_transactions", 0, 1, 64}, {"batch.transactions_offset", 8, 8, br.TransactionsOffset},
				{"processed_code", 16, 1, 2}, {"responses.tag", 24, 1, 1}, {"responses.num", 25, 1, 33}, {"responses.offset", 32, 8, 0x4000}},
			encode: func(b []byte) error { return w.Encode(abi, b) }, want: w,
			decode: func(b []byte) (any, error) { return DecodeWorkerToPack(abi, 0xEE, b) },
		})
		cr := CheckResponse{ParsingAndSanitizationFlags: ParseFailed, StatusCheckFlags: StatusRequested | StatusTooOld,
			FeePayerBalanceFlags: FeePayerBalancePerformed, ResolveFlags: ResolveFailed, IncludedSlot: 11, BalanceSlot: 12,
			FeePayerBalance: 13, ResolutionSlot: 14, MinAltDeactivationSlot: 15, ResolvedPubkeys: pk}
		cs = append(cs, goldenCase{
			name: "CheckResponse", abi: abi, size: 64,
			fields: []field{{"parsing_and_sanitization_flags", 0, 1, 1}, {"status_check_flags", 1, 1, 5},
				{"fee_payer_balance_flags", 2, 1, 2}, {"resolve_flags", 3, 1, 4}, {"included_slot", 8, 8, 11},
				{"balance_slot", 16, 8, 12}, {"fee_payer_balance", 24, 8, 13}, {"resolution_slot", 32, 8, 14},
				{"min_alt_deactivation_slot", 40, 8, 15}, {"resolved_pubkeys.offset", 48, 8, pk.Offset}, {"resolved_pubkeys.num", 56, 4, 9}},
			encode: func(b []byte) error { return cr.Encode(abi, b) }, want: cr,
			decode: func(b []byte) (any, error) { return DecodeCheckResponse(abi, b) },
		})
	}
	rr44 := TransactionResponseRegion{Tag: ExecutionResponseTag, NumTransactionResponses: 33, TransactionResponsesOffset: 0x4000}
	cs = append(cs, goldenCase{
		name: "ExecutionResponseRegion", abi: ABI44, size: 16,
		fields: []field{{"num_transaction_responses", 0, 1, 33}, {"transaction_responses_offset", 8, 8, 0x4000}},
		encode: func(b []byte) error { return rr44.Encode(ABI44, b) }, want: rr44,
		decode: func(b []byte) (any, error) { return DecodeTransactionResponseRegion(ABI44, ExecutionResponseTag, b) },
	})
	w44 := WorkerToPack{Batch: br, ProcessedCode: Invalid, Responses: rr44}
	cs = append(cs, goldenCase{
		name: "ExecutionWorkerToPackMessage", abi: ABI44, size: 40,
		fields: []field{{"batch.num_transactions", 0, 1, 64}, {"batch.transactions_offset", 8, 8, br.TransactionsOffset},
			{"processed_code", 16, 1, 1}, {"responses.num", 24, 1, 33}, {"responses.offset", 32, 8, 0x4000}},
		encode: func(b []byte) error { return w44.Encode(ABI44, b) }, want: w44,
		decode: func(b []byte) (any, error) { return DecodeWorkerToPack(ABI44, ExecutionResponseTag, b) },
	})
	cr44 := CheckResponse{ParsingAndSanitizationFlags: 1, StatusCheckFlags: StatusUnsupportedVersion, FeePayerBalanceFlags: 3,
		ResolveFlags: 7, SchedulingDetailsFlags: SchedulingDetailsPerformed, IncludedSlot: 21, TransactionFee: 22,
		PrioritizationFee: 23, EstimatedCostUnits: 24, AllocatedAccountsDataSize: 25, BalanceSlot: 26,
		FeePayerBalance: 27, ResolutionSlot: 28, MinAltDeactivationSlot: 29, ResolvedPubkeys: pk}
	cs = append(cs, goldenCase{
		name: "CheckResponse", abi: ABI44, size: 96,
		fields: []field{{"parsing_and_sanitization_flags", 0, 1, 1}, {"status_check_flags", 1, 1, 32},
			{"fee_payer_balance_flags", 2, 1, 3}, {"resolve_flags", 3, 1, 7}, {"scheduling_details_flags", 4, 1, 2},
			{"included_slot", 8, 8, 21}, {"transaction_fee", 16, 8, 22}, {"prioritization_fee", 24, 8, 23},
			{"estimated_cost_units", 32, 8, 24}, {"allocated_accounts_data_size", 40, 8, 25}, {"balance_slot", 48, 8, 26},
			{"fee_payer_balance", 56, 8, 27}, {"resolution_slot", 64, 8, 28}, {"min_alt_deactivation_slot", 72, 8, 29},
			{"resolved_pubkeys.offset", 80, 8, pk.Offset}, {"resolved_pubkeys.num", 88, 4, 9}},
		encode: func(b []byte) error { return cr44.Encode(ABI44, b) }, want: cr44,
		decode: func(b []byte) (any, error) { return DecodeCheckResponse(ABI44, b) },
	})
	p40 := Progress{LeaderState: LeaderReady, CurrentSlotProgress: 37, CurrentSlot: 1001, NextLeaderSlot: 1002, LeaderRangeEnd: 1005, RemainingCostUnits: 48_000_000}
	cs = append(cs, goldenCase{
		name: "ProgressMessage", abi: ABI40, size: 48,
		fields: []field{{"leader_state", 0, 1, 2}, {"current_slot", 8, 8, 1001}, {"next_leader_slot", 16, 8, 1002},
			{"leader_range_end", 24, 8, 1005}, {"remaining_cost_units", 32, 8, 48_000_000}, {"current_slot_progress", 40, 1, 37}},
		encode: func(b []byte) error { return p40.Encode(ABI40, b) }, want: p40,
		decode: func(b []byte) (any, error) { return DecodeProgress(ABI40, b) },
	})
	p41 := Progress{LeaderState: LeaderStarting, CurrentSlotProgress: 99, Epoch: 800, CurrentSlot: 1001, NextLeaderSlot: 1002,
		LeaderRangeEnd: 1005, RemainingCostUnits: 7, LatestBlockhash: fill(32, 0x3C)}
	cs = append(cs, goldenCase{
		name: "ProgressMessage", abi: ABI41, size: 80,
		fields: []field{{"leader_state", 0, 1, 1}, {"current_slot_progress", 1, 1, 99}, {"epoch", 8, 8, 800},
			{"current_slot", 16, 8, 1001}, {"next_leader_slot", 24, 8, 1002}, {"leader_range_end", 32, 8, 1005},
			{"remaining_cost_units", 40, 8, 7}, {"latest_blockhash", 48, 32, 0x3C}},
		encode: func(b []byte) error { return p41.Encode(ABI41, b) }, want: p41,
		decode: func(b []byte) (any, error) { return DecodeProgress(ABI41, b) },
	})
	p44 := p41
	p44.RemainingAllocatedAccountsDataSize = 100 << 20
	p44.TargetBankTimeMs = 400
	cs = append(cs, goldenCase{
		name: "ProgressMessage", abi: ABI44, size: 96,
		fields: []field{{"leader_state", 0, 1, 1}, {"current_slot_progress", 1, 1, 99}, {"epoch", 8, 8, 800},
			{"current_slot", 16, 8, 1001}, {"next_leader_slot", 24, 8, 1002}, {"leader_range_end", 32, 8, 1005},
			{"remaining_cost_units", 40, 8, 7}, {"remaining_allocated_accounts_data_size", 48, 8, 100 << 20},
			{"latest_blockhash", 56, 32, 0x3C}, {"target_bank_time_ms", 88, 2, 400}},
		encode: func(b []byte) error { return p44.Encode(ABI44, b) }, want: p44,
		decode: func(b []byte) (any, error) { return DecodeProgress(ABI44, b) },
	})
	return cs
}

func TestGoldenLayouts(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name+"/"+c.abi.String(), func(t *testing.T) {
			// Stale bytes everywhere: padding must come out zero, bytes past
			// the message untouched.
			b := make([]byte, c.size+8)
			for i := range b {
				b[i] = 0xAA
			}
			if err := c.encode(b); err != nil {
				t.Fatalf("encode: %v", err)
			}
			covered := make([]bool, c.size)
			for _, f := range c.fields {
				checkField(t, b, f)
				for i := f.off; i < f.off+f.width; i++ {
					if covered[i] {
						t.Fatalf("field %s overlaps another at byte %d", f.name, i)
					}
					covered[i] = true
				}
			}
			for i := 0; i < c.size; i++ {
				if !covered[i] && b[i] != 0 {
					t.Errorf("padding byte %d = %#x, want 0", i, b[i])
				}
			}
			for i := c.size; i < len(b); i++ {
				if b[i] != 0xAA {
					t.Errorf("byte %d past the %d-byte message was written", i, c.size)
				}
			}
			got, err := c.decode(b[:c.size])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("round trip\n got %+v\nwant %+v", got, c.want)
			}
			if _, err := c.decode(b[:c.size-1]); !errors.Is(err, ErrShortBuffer) {
				t.Errorf("decode of %d bytes: err %v, want ErrShortBuffer", c.size-1, err)
			}
			if err := c.encode(make([]byte, c.size-1)); !errors.Is(err, ErrShortBuffer) {
				t.Errorf("encode into %d bytes: err %v, want ErrShortBuffer", c.size-1, err)
			}
		})
	}
}

func checkField(t *testing.T, b []byte, f field) {
	t.Helper()
	var got uint64
	switch f.width {
	case 1:
		got = uint64(b[f.off])
	case 2:
		got = uint64(binary.LittleEndian.Uint16(b[f.off:]))
	case 4:
		got = uint64(binary.LittleEndian.Uint32(b[f.off:]))
	case 8:
		got = binary.LittleEndian.Uint64(b[f.off:])
	default:
		for i := 0; i < f.width; i++ {
			if uint64(b[f.off+i]) != f.val {
				t.Errorf("%s @%d: byte %d = %#x, want %#x", f.name, f.off, i, b[f.off+i], f.val)
				return
			}
		}
		return
	}
	if got != f.val {
		t.Errorf("%s @%d (%d bytes) = %#x, want %#x", f.name, f.off, f.width, got, f.val)
	}
}

func TestSizesPerABI(t *testing.T) {
	for _, c := range []struct {
		abi                   ABI
		progress, checkResult int
	}{{ABI40, 48, 64}, {ABI41, 80, 64}, {ABI44, 96, 96}, {0, 0, 0}, {9, 0, 0}} {
		if got := ProgressSize(c.abi); got != c.progress {
			t.Errorf("ProgressSize(%v) = %d, want %d", c.abi, got, c.progress)
		}
		if got := CheckResponseSize(c.abi); got != c.checkResult {
			t.Errorf("CheckResponseSize(%v) = %d, want %d", c.abi, got, c.checkResult)
		}
	}
}

func TestUnknownABIAndTags(t *testing.T) {
	b := make([]byte, 128)
	if _, err := DecodeProgress(0, b); !errors.Is(err, ErrNotInABI) {
		t.Errorf("DecodeProgress(0): %v", err)
	}
	if _, err := DecodeCheckResponse(7, b); !errors.Is(err, ErrNotInABI) {
		t.Errorf("DecodeCheckResponse(7): %v", err)
	}
	if _, err := DecodePackToCheckWorker(ABI41, b); !errors.Is(err, ErrNotInABI) {
		t.Errorf("PackToCheckWorker in ABI41: %v", err)
	}
	b[24] = 2 // tag 2 in an ABI41 WorkerToPack
	if _, err := DecodeWorkerToPack(ABI41, ExecutionResponseTag, b); !errors.Is(err, ErrBadTag) {
		t.Errorf("tag 2: %v", err)
	}
	if _, err := DecodeWorkerToPack(ABI44, 5, b); !errors.Is(err, ErrBadTag) {
		t.Errorf("ABI44 with queue tag 5: %v", err)
	}
}
