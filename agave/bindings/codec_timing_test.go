package bindings

import "testing"

var (
	sinkProgress Progress
	sinkWorker   WorkerToPack
	sinkTpu      TpuToPack
	sinkCheck    CheckResponse
	sinkBytes    []byte
)

// hotPath is the per-message work of a pack loop: read a TpuToPack and its
// bytes, a Progress, a WorkerToPack and one response of each kind, and write
// a PackToWorker with one batch entry.
func hotPath(abi ABI, mem []byte) {
	tpu, _ := DecodeTpuToPack(mem[0:40])
	sinkTpu = tpu
	sinkBytes, _ = tpu.Transaction.Bytes(mem)
	sinkProgress, _ = DecodeProgress(abi, mem[64:160])
	sinkWorker, _ = DecodeWorkerToPack(abi, ExecutionResponseTag, mem[160:200])
	er, _ := sinkWorker.Responses.ExecutionResponse(mem, 0)
	sinkTpu.Transaction.Length = uint32(er.CostUnits)
	cr := TransactionResponseRegion{Tag: CheckResponseTag, NumTransactionResponses: 1, TransactionResponsesOffset: 512}
	sinkCheck, _ = cr.CheckResponse(abi, mem, 0)
	m := PackToWorker{Flags: 1, MaxWorkingSlot: 10, Batch: SharableTransactionBatchRegion{NumTransactions: 1, TransactionsOffset: 1024}}
	_ = m.Encode(mem[200:232])
	_ = m.Batch.Put(mem, 0, tpu.Transaction)
}

func hotMem(abi ABI) []byte {
	mem := make([]byte, 4096)
	_ = TpuToPack{Transaction: SharableTransactionRegion{Offset: 2048, Length: 200}}.Encode(mem[0:40])
	_ = Progress{LeaderState: LeaderReady, CurrentSlot: 5}.Encode(abi, mem[64:160])
	_ = WorkerToPack{Responses: TransactionResponseRegion{NumTransactionResponses: 1, TransactionResponsesOffset: 256}}.Encode(abi, mem[160:200])
	return mem
}

func TestCodecAllocsNothing(t *testing.T) {
	for _, abi := range []ABI{ABI40, ABI41, ABI44} {
		mem := hotMem(abi)
		if n := testing.AllocsPerRun(1000, func() { hotPath(abi, mem) }); n != 0 {
			t.Errorf("%v: %v allocs per message round", abi, n)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, abi := range []ABI{ABI40, ABI41, ABI44} {
		mem := hotMem(abi)
		b.Run(abi.String()+"/TpuToPack", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkTpu, _ = DecodeTpuToPack(mem[0:40])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(abi.String()+"/Progress", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkProgress, _ = DecodeProgress(abi, mem[64:160])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(abi.String()+"/WorkerToPack+ExecutionResponse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkWorker, _ = DecodeWorkerToPack(abi, ExecutionResponseTag, mem[160:200])
				er, _ := sinkWorker.Responses.ExecutionResponse(mem, 0)
				sinkTpu.Transaction.Length = uint32(er.CostUnits)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		b.Run(abi.String()+"/CheckResponse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkCheck, _ = DecodeCheckResponse(abi, mem[512:])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, abi := range []ABI{ABI40, ABI41, ABI44} {
		mem := hotMem(abi)
		m := PackToWorker{Flags: 1, MaxWorkingSlot: 10, Batch: SharableTransactionBatchRegion{NumTransactions: 1, TransactionsOffset: 1024}}
		b.Run(abi.String()+"/PackToWorker+entry", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = m.Encode(mem[200:232])
				_ = m.Batch.Put(mem, 0, SharableTransactionRegion{Offset: 2048, Length: 200})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
		p := Progress{LeaderState: LeaderReady, CurrentSlot: 5, Epoch: 3}
		b.Run(abi.String()+"/Progress", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Encode(abi, mem[64:160])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func BenchmarkHotPath(b *testing.B) {
	for _, abi := range []ABI{ABI40, ABI44} {
		mem := hotMem(abi)
		b.Run(abi.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hotPath(abi, mem)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rounds/s")
		})
	}
}
