package channels

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	want := map[string]struct {
		capacity uint64
		size     int
		dir      Direction
	}{
		TPU: {32768, 1264, ToQoS}, FWD: {32768, 1264, ToQoS}, RE1: {32768, 1264, ToQoS}, RE2: {32768, 1264, ToQoS},
		QoSToSig: {32768, 1264, FromQoS}, SigToQoS: {32768, 1264, ToQoS},
		SchToQoS: {32768, 16, ToQoS}, TxStatusCache: {1048576, 64, ToQoS},
	}
	if len(Table) != len(want) {
		t.Fatalf("Table has %d channels, want %d", len(Table), len(want))
	}
	for _, s := range Table {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected channel %q", s.Name)
			continue
		}
		if s.Capacity != w.capacity || s.RecordSize != w.size || s.Direction != w.dir {
			t.Errorf("%s = %+v, want %+v", s.Name, s, w)
		}
		if got, ok := Lookup(s.Name); !ok || got != s {
			t.Errorf("Lookup(%q) = %+v, %v", s.Name, got, ok)
		}
		if !isPow2(s.Capacity) {
			t.Errorf("%s capacity %d not a power of two", s.Name, s.Capacity)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup of an unknown name succeeded")
	}
	if got := Table[0].MinSize(); got != 640+32768*1264 {
		t.Errorf("tpu_to_qos MinSize = %d", got)
	}
	if recordSize[Packet]() != PacketSize || recordSize[RemainingMeta]() != RemainingMetaSize || recordSize[Signature]() != SignatureSize {
		t.Error("record type sizes differ from the constants")
	}
	o := Options{Prefix: "x_"}
	if got := o.Path(TPU); got != "/dev/shm/x_tpu_to_qos" {
		t.Errorf("Path = %q", got)
	}
	o = Options{Prefix: "x_", HugePages: true}
	if got := o.Path(TPU); got != "/mnt/hugepages/x_tpu_to_qos" {
		t.Errorf("huge Path = %q", got)
	}
}

// TestHeaderLayout checks the file byte for byte against the layout of
// docs/design.md "The channel".
func TestHeaderLayout(t *testing.T) {
	o := testOptions(t)
	s := specFor[RemainingMeta]("layout", 16)
	p, err := OpenProducer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := OpenConsumer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r RemainingMeta
	for i := range 5 {
		r.Set(0x1111000+uint64(i), 0x2222000+uint64(i))
		p.Push(&r)
	}
	p.Sync()
	for range 3 {
		if !c.Pop(&r) {
			t.Fatal("Pop found nothing")
		}
	}
	c.Commit()
	p.Beat()
	p.Beat()
	c.Beat()
	p.SetMeta(SeedMetaOffset, 0x0123456789abcdef)
	c.SetMeta(104, 0xfeedface)

	b, err := os.ReadFile(o.Path(s.Name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 640+16*16 {
		t.Fatalf("file is %d bytes, want %d", len(b), 640+16*16)
	}
	le := binary.LittleEndian
	for _, f := range []struct {
		name string
		off  int
		want uint64
	}{
		{"tail", 0, 5}, {"head", 128, 3}, {"producer heartbeat", 256, 2}, {"consumer heartbeat", 384, 1},
		{"seed", 512, 0x0123456789abcdef}, {"meta 104", 616, 0xfeedface}, {"capacity", 624, 16},
	} {
		if got := le.Uint64(b[f.off:]); got != f.want {
			t.Errorf("%s at %d = %#x, want %#x", f.name, f.off, got, f.want)
		}
	}
	if string(b[632:640]) != "TEMPORAL" {
		t.Errorf("magic bytes = %q", b[632:640])
	}
	if Magic != 0x4c41524f504d4554 {
		t.Errorf("Magic = %#x", Magic)
	}
	// Record i lives at 640 + i*16.
	for i := range 5 {
		rec := b[640+16*i:]
		if le.Uint64(rec) != 0x1111000+uint64(i) || le.Uint64(rec[8:]) != 0x2222000+uint64(i) {
			t.Errorf("record %d = % x", i, rec[:16])
		}
	}
	// Everything else in the header is zero.
	for _, span := range [][2]int{{8, 128}, {136, 256}, {264, 384}, {392, 512}, {520, 616}} {
		if !bytes.Equal(b[span[0]:span[1]], make([]byte, span[1]-span[0])) {
			t.Errorf("bytes %d..%d not zero", span[0], span[1])
		}
	}
	if got := c.Meta(SeedMetaOffset); got != 0x0123456789abcdef {
		t.Errorf("consumer Meta = %#x", got)
	}
	if got := p.Meta(104); got != 0xfeedface {
		t.Errorf("producer Meta(104) = %#x", got)
	}
}

func TestMetaOffsetPanics(t *testing.T) {
	o := testOptions(t)
	p, err := OpenProducer[Signature](o, specFor[Signature]("meta", 4))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, off := range []int{-8, 3, 112, 1 << 20} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Meta(%d) did not panic", off)
				}
			}()
			p.Meta(off)
		}()
	}
}

// roundTrip pushes n records, checks nothing is visible before Sync (when
// n is below the publish burst), then pops them in order.
func roundTrip[R Record](t *testing.T, capacity uint64, n int) {
	t.Helper()
	o := testOptions(t)
	s := specFor[R]("rt", capacity)
	p, err := OpenProducer[R](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Created() {
		t.Error("new file: Created() = false")
	}
	c, err := OpenConsumer[R](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r R
	for i := range n {
		fill(&r, uint64(i))
		p.Push(&r)
	}
	if uint64(n) < burst(capacity) && c.Pop(&r) {
		t.Fatal("record visible before Sync")
	}
	p.Sync()
	for i := range n {
		if !c.Pop(&r) {
			t.Fatalf("Pop %d found nothing", i)
		}
		seq, err := seqOf(&r)
		if err != nil || seq != uint64(i) {
			t.Fatalf("Pop %d: seq %d, %v", i, seq, err)
		}
	}
	if c.Pop(&r) {
		t.Fatal("Pop past the tail")
	}
	if c.Read() != uint64(n) || c.Skipped() != 0 || p.Tail() != uint64(n) {
		t.Fatalf("read %d skipped %d tail %d", c.Read(), c.Skipped(), p.Tail())
	}
}

func TestRoundTrip(t *testing.T) {
	t.Run("packet", func(t *testing.T) { roundTrip[Packet](t, 64, 10) })
	t.Run("meta", func(t *testing.T) { roundTrip[RemainingMeta](t, 64, 10) })
	t.Run("signature", func(t *testing.T) { roundTrip[Signature](t, 64, 10) })
	t.Run("packet-full-window", func(t *testing.T) { roundTrip[Packet](t, 64, 48) })
	t.Run("capacity-2", func(t *testing.T) { roundTrip[Signature](t, 2, 1) })
}

// TestPublishEveryQuarter checks the producer publishes by itself every
// capacity/4 records.
func TestPublishEveryQuarter(t *testing.T) {
	o := testOptions(t)
	s := specFor[RemainingMeta]("burst", 16)
	p, _ := OpenProducer[RemainingMeta](o, s)
	defer p.Close()
	c, err := OpenConsumer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r RemainingMeta
	for i := range 3 {
		fill(&r, uint64(i))
		p.Push(&r)
	}
	if c.Pop(&r) {
		t.Fatal("published before 4 records")
	}
	fill(&r, 3)
	p.Push(&r)
	for i := range 4 {
		if !c.Pop(&r) {
			t.Fatalf("record %d not published after 4 pushes", i)
		}
	}
}

func TestWrapAround(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("wrap", 8)
	p, _ := OpenProducer[Packet](o, s)
	defer p.Close()
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var in, out Packet
	seq := uint64(0)
	// Batches of every size up to the window (capacity - capacity/4 = 6),
	// many times round the ring.
	for round := range 200 {
		n := round%6 + 1
		for range n {
			fill(&in, seq)
			p.Push(&in)
			seq++
		}
		p.Sync()
		for range n {
			if !c.Pop(&out) {
				t.Fatalf("round %d: nothing to pop", round)
			}
			got, err := seqOf(&out)
			if err != nil || got != c.Read()-1 {
				t.Fatalf("round %d: seq %d (want %d): %v", round, got, c.Read()-1, err)
			}
		}
	}
	if c.Skipped() != 0 || c.Read() != seq || seq < 8*50 {
		t.Fatalf("read %d of %d, skipped %d", c.Read(), seq, c.Skipped())
	}
}

func TestOverrunExactSkip(t *testing.T) {
	for _, tc := range []struct {
		capacity, pushed, skipped uint64
	}{
		{16, 12, 0},   // exactly the window (16-4): nothing lost
		{16, 13, 1},   // one past the window
		{16, 100, 88}, // far behind: keep the last 12
		{1024, 5000, 5000 - 768},
		{2, 7, 6}, // burst 1, window 1
		{4, 4, 1}, // burst 1, window 3
	} {
		o := testOptions(t)
		s := specFor[Signature]("overrun", tc.capacity)
		p, _ := OpenProducer[Signature](o, s)
		c, err := OpenConsumer[Signature](o, s)
		if err != nil {
			t.Fatal(err)
		}
		// Window is the boundary: pushing more than it makes a consumer
		// that read nothing skip.
		if w := p.Window(); (tc.pushed > w) != (tc.skipped > 0) || tc.skipped > 0 && tc.skipped != tc.pushed-w {
			t.Errorf("%+v: Window %d disagrees with the skips", tc, w)
		}
		var r Signature
		for i := range tc.pushed {
			fill(&r, i)
			p.Push(&r)
		}
		p.Sync()
		want := tc.skipped
		for c.Pop(&r) {
			seq, err := seqOf(&r)
			if err != nil || seq != want {
				t.Fatalf("%+v: popped seq %d, want %d (%v)", tc, seq, want, err)
			}
			want++
		}
		if c.Skipped() != tc.skipped || c.Read() != tc.pushed-tc.skipped || want != tc.pushed {
			t.Errorf("%+v: skipped %d read %d", tc, c.Skipped(), c.Read())
		}
		// After catching up, reading goes on without loss.
		fill(&r, tc.pushed)
		p.Push(&r)
		p.Sync()
		if !c.Pop(&r) || c.Skipped() != tc.skipped {
			t.Errorf("%+v: no clean read after the overrun", tc)
		}
		p.Close()
		c.Close()
	}
}

// TestTornReadDetected overwrites the very slot being copied, between the
// copy and the tail re-check: Pop must not return the mixed record.
func TestTornReadDetected(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("torn", 16)
	p, _ := OpenProducer[Packet](o, s)
	defer p.Close()
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r Packet
	seq := uint64(0)
	push := func(n int) {
		for range n {
			fill(&r, seq)
			p.Push(&r)
			seq++
		}
		p.Sync()
	}
	push(4)
	fired := 0
	testHookAfterCopy = func() {
		if fired == 0 {
			push(20) // tail 24: slot 0 now holds record 16
		}
		fired++
	}
	t.Cleanup(func() { testHookAfterCopy = nil })
	var out Packet
	if !c.Pop(&out) {
		t.Fatal("Pop found nothing")
	}
	got, err := seqOf(&out)
	if err != nil {
		t.Fatal(err)
	}
	// The copy of record 0 was invalidated; the retry jumped to 24-12 = 12.
	if got != 12 || c.Skipped() != 12 || c.Read() != 1 || fired != 2 {
		t.Fatalf("got seq %d, skipped %d, read %d, hook ran %d times", got, c.Skipped(), c.Read(), fired)
	}
}

func TestConsumerStartsAtTail(t *testing.T) {
	o := testOptions(t)
	s := specFor[RemainingMeta]("join", 64)
	p, _ := OpenProducer[RemainingMeta](o, s)
	defer p.Close()
	var r RemainingMeta
	for i := range 5 {
		fill(&r, uint64(i))
		p.Push(&r)
	}
	p.Sync()
	c, err := OpenConsumer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Pop(&r) {
		t.Fatal("consumer read records published before it joined")
	}
	fill(&r, 5)
	p.Push(&r)
	p.Sync()
	if !c.Pop(&r) {
		t.Fatal("nothing after the join")
	}
	if seq, _ := seqOf(&r); seq != 5 {
		t.Fatalf("seq %d, want 5", seq)
	}
}

func TestProducerRestartKeepsTail(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("restart", 64)
	p, err := OpenProducer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r Packet
	seq := uint64(0)
	for range 10 {
		fill(&r, seq)
		p.Push(&r)
		seq++
	}
	if err := p.Close(); err != nil { // Close publishes
		t.Fatal(err)
	}
	p, err = OpenProducer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Created() || p.Tail() != 10 {
		t.Fatalf("restarted producer: created %v tail %d", p.Created(), p.Tail())
	}
	for range 7 {
		fill(&r, seq)
		p.Push(&r)
		seq++
	}
	p.Sync()
	for i := range seq {
		if !c.Pop(&r) {
			t.Fatalf("record %d missing", i)
		}
		if got, err := seqOf(&r); err != nil || got != i {
			t.Fatalf("record %d: seq %d %v", i, got, err)
		}
	}
	if c.Pop(&r) || c.Skipped() != 0 {
		t.Fatal("extra records or skips after the restart")
	}
	// Create on a live channel joins it and changes nothing.
	created, err := Create(o, s)
	if err != nil || created {
		t.Fatalf("Create on a live file: created %v, %v", created, err)
	}
	if st, err := Inspect(o, s); err != nil || st.Tail != 17 {
		t.Fatalf("after Create: tail %d, %v", st.Tail, err)
	}
}

func TestHeartbeats(t *testing.T) {
	o := testOptions(t)
	s := specFor[Signature]("hb", 8)
	p, _ := OpenProducer[Signature](o, s)
	defer p.Close()
	c, err := OpenConsumer[Signature](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p.ConsumerAlive() || c.ProducerAlive() {
		t.Fatal("alive before any beat")
	}
	c.Beat()
	p.Beat()
	if !p.ConsumerAlive() || !c.ProducerAlive() {
		t.Fatal("beat not seen")
	}
	if p.ConsumerAlive() || c.ProducerAlive() {
		t.Fatal("alive twice for one beat")
	}
}

// TestHostileTail drives the consumer with tails no honest producer
// writes: behind the read index, at the far end of the u64 range.
func TestHostileTail(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("hostile", 16)
	p, _ := OpenProducer[Packet](o, s)
	defer p.Close()
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var r Packet
	for i := range 10 {
		fill(&r, uint64(i))
		p.Push(&r)
	}
	p.Sync()
	for c.Pop(&r) {
	}
	p.m.tail.Store(3) // behind the consumer
	if c.Pop(&r) || c.Resyncs() != 1 || c.Next() != 3 {
		t.Fatalf("tail behind head: next %d resyncs %d", c.Next(), c.Resyncs())
	}
	p.m.tail.Store(^uint64(0)) // far ahead
	n := 0
	for c.Pop(&r) {
		n++
	}
	if n != 12 || c.Next() != ^uint64(0) {
		t.Fatalf("far tail: read %d, next %d", n, c.Next())
	}
	if c.Lag() != 0 {
		t.Fatalf("Lag = %d", c.Lag())
	}
}

func TestReplaced(t *testing.T) {
	o := testOptions(t)
	s := specFor[RemainingMeta]("replaced", 8)
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	c, err := OpenConsumer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	if c.Replaced() {
		t.Fatal("Replaced on the original file")
	}
	if err := Remove(o, s); err != nil {
		t.Fatal(err)
	}
	if !c.Replaced() {
		t.Fatal("not Replaced after Remove")
	}
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	if !c.Replaced() {
		t.Fatal("not Replaced after re-creation")
	}
	c.Close()
	c, err = OpenConsumer[RemainingMeta](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Replaced() {
		t.Fatal("Replaced after rejoining")
	}
}

// TestConcurrentStress runs a producer flat out against a consumer on a
// small ring: every record returned must be whole, in order, and account
// for its position exactly (read + skipped == index + 1).
func TestConcurrentStress(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("stress", 64)
	p, _ := OpenProducer[Packet](o, s)
	defer p.Close()
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Bounded in count and time (the race detector slows the pattern
	// writes a lot): the producer reports how many it pushed.
	const maxRecords = 300_000
	var pushed atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		var r Packet
		stop := time.Now().Add(500 * time.Millisecond)
		i := uint64(0)
		for ; i < maxRecords && (i&1023 != 0 || time.Now().Before(stop)); i++ {
			fill(&r, i)
			p.Push(&r)
		}
		p.Sync()
		pushed.Store(i)
	}()
	var r Packet
	deadline := time.Now().Add(30 * time.Second)
	finished := false
	for time.Now().Before(deadline) {
		if !c.Pop(&r) {
			if finished && c.Read()+c.Skipped() == pushed.Load() {
				break
			}
			select {
			case <-done:
				finished = true
			default:
			}
			continue
		}
		seq, err := seqOf(&r)
		if err != nil {
			t.Fatal(err)
		}
		if seq != c.Read()+c.Skipped()-1 {
			t.Fatalf("seq %d at read %d skipped %d", seq, c.Read(), c.Skipped())
		}
	}
	<-done
	if c.Read()+c.Skipped() != pushed.Load() || c.Read() == 0 {
		t.Fatalf("read %d + skipped %d != pushed %d", c.Read(), c.Skipped(), pushed.Load())
	}
	t.Logf("read %d, skipped %d", c.Read(), c.Skipped())
}

func TestZeroAlloc(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("alloc", 1024)
	p, _ := OpenProducer[Packet](o, s)
	defer p.Close()
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var in, out Packet
	fill(&in, 1)
	if n := testing.AllocsPerRun(1000, func() { p.Push(&in) }); n != 0 {
		t.Errorf("Push allocates %v times", n)
	}
	p.Sync()
	if n := testing.AllocsPerRun(1000, func() { c.Pop(&out) }); n != 0 {
		t.Errorf("Pop allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { p.Push(&in); p.Sync(); c.Pop(&out); c.Beat(); p.Beat() }); n != 0 {
		t.Errorf("Push+Sync+Pop+Beat allocates %v times", n)
	}
}

// TestPacketCopiesUsedBytes: a packet travels as its data[:size] and
// metadata; stale bytes of the reader's record beyond size stay as they
// were and are never exposed by Data.
func TestPacketCopiesUsedBytes(t *testing.T) {
	o := testOptions(t)
	s := specFor[Packet]("pkt", 64)
	p, err := OpenProducer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := OpenConsumer[Packet](o, s)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var in Packet
	for i := range in {
		in[i] = 0xAA
	}
	in.SetData([]byte("hello, sigverify"))
	in.SetAddr(netip.MustParseAddr("2001:db8::7"))
	in.SetPort(8003)
	in.SetFlags(FlagForwarded)
	p.Push(&in)
	p.Sync()
	var out Packet
	if !c.Pop(&out) {
		t.Fatal("nothing popped")
	}
	if string(out.Data()) != "hello, sigverify" || out.Port() != 8003 || out.Flags() != FlagForwarded {
		t.Fatalf("popped data %q port %d flags %#x", out.Data(), out.Port(), out.Flags())
	}
	if a, _ := out.Addr(); a != netip.MustParseAddr("2001:db8::7") {
		t.Fatalf("popped address %v", a)
	}
	if out[100] != 0 {
		t.Fatalf("byte beyond size copied: %#x", out[100])
	}
}
