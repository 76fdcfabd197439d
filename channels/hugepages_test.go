package channels

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// hugetlbfsForTest returns the hugetlbfs mount that scripts/test prepares
// (it reserves pages as root and exports QOS_TEST_HUGETLBFS). Without it
// the test skips, except under CI, where it must run and so fails.
func hugetlbfsForTest(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("QOS_TEST_HUGETLBFS")
	if dir == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("QOS_TEST_HUGETLBFS is not set under CI=true: ./scripts/test must reserve huge pages " +
				"and mount hugetlbfs (as root), so that the huge-page tests run in CI")
		}
		t.Skip("QOS_TEST_HUGETLBFS not set: run ./scripts/test as root, or mount hugetlbfs, reserve pages and export it")
	}
	return dir
}

// hugeOptions returns options on the test mount with a prefix of this
// process, removing what the test creates.
func hugeOptions(t *testing.T, specs ...Spec) Options {
	t.Helper()
	o := Options{HugePages: true, HugetlbfsDir: hugetlbfsForTest(t), Prefix: fmt.Sprintf("qos-test-%d-", os.Getpid())}
	t.Cleanup(func() {
		for _, s := range specs {
			_ = Remove(o, s)
		}
	})
	return o
}

// kernelPageSize returns the KernelPageSize (bytes) of the mapping that
// holds addr, from /proc/self/smaps.
func kernelPageSize(t *testing.T, addr uintptr) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := strings.Cut(strings.Fields(line + " ")[0], "-"); ok && !strings.HasSuffix(lo, ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				in = uint64(addr) >= a && uint64(addr) < b
				continue
			}
		}
		if in && strings.HasPrefix(line, "KernelPageSize:") {
			kb, err := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("mapping of %#x not found in smaps", addr)
	return 0
}

func TestHugePagesRoundTrip(t *testing.T) {
	s := specFor[Packet]("hp", 1024) // 1.3 MB: one 2 MiB page
	o := hugeOptions(t, s)
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
	if got := kernelPageSize(t, uintptr(unsafe.Pointer(&p.m.mem[0]))); got != hugePageSize2M {
		t.Fatalf("producer mapping uses %d-byte pages", got)
	}
	if got := kernelPageSize(t, uintptr(unsafe.Pointer(&c.m.mem[0]))); got != hugePageSize2M {
		t.Fatalf("consumer mapping uses %d-byte pages", got)
	}
	var r Packet
	const n = 5000
	for i := range uint64(n) {
		fill(&r, i)
		p.Push(&r)
		if i%100 == 99 {
			p.Sync()
			for c.Pop(&r) {
				if seq, err := seqOf(&r); err != nil || seq != c.Read()-1 {
					t.Fatalf("seq %d at %d: %v", seq, c.Read()-1, err)
				}
			}
		}
	}
	if c.Read() != n || c.Skipped() != 0 {
		t.Fatalf("read %d skipped %d", c.Read(), c.Skipped())
	}
	st, err := Inspect(o, s)
	if err != nil {
		t.Fatal(err)
	}
	if st.FileSize != hugePageSize2M || st.Tail != n {
		t.Fatalf("file %d bytes, tail %d", st.FileSize, st.Tail)
	}
	if created, err := Create(o, s); err != nil || created {
		t.Fatalf("Create on the live file: %v %v", created, err)
	}
}

func TestHugePagesCrossProcess(t *testing.T) {
	s := specFor[Packet](childName, 1024)
	o := hugeOptions(t, s)
	crossProcess[Packet](t, o, "packet", true, true)
	crossProcess[Packet](t, o, "packet", false, true)
}

func TestHugePagesShortage(t *testing.T) {
	hugetlbfsForTest(t)
	counts, err := ReadHugePages(hugePageSize2M)
	if err != nil {
		t.Fatal(err)
	}
	// A ring one page larger than every available page.
	capacity := uint64(2)
	for (&Spec{Capacity: capacity, RecordSize: PacketSize}).MinSize() <= (counts.Available()+1)*hugePageSize2M {
		capacity *= 2
	}
	s := specFor[Packet]("hp_short", capacity)
	o := hugeOptions(t, s)
	need := roundUp(s.MinSize(), hugePageSize2M) / hugePageSize2M
	_, err = OpenProducer[Packet](o, s)
	wantErr(t, err, ErrHugePages, o.Path(s.Name),
		fmt.Sprintf("needs %d huge pages of 2 MiB", need), "as root: echo ", " > /proc/sys/vm/nr_hugepages")
	// The number to echo is the pool plus the shortfall: at least the
	// pages needed. (Other tests may take or free pages meanwhile, so the
	// exact figure is not pinned.)
	var e *Error
	errors.As(err, &e)
	var echo int64
	if _, serr := fmt.Sscanf(e.Remedy, "as root: echo %d >", &echo); serr != nil || echo < need {
		t.Errorf("remedy %q: want at least %d pages", e.Remedy, need)
	}
	t.Log(err)
	if _, err := os.Stat(o.Path(s.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was left behind: %v", err)
	}
	_, err = Create(o, s)
	wantErr(t, err, ErrHugePages, o.Path(s.Name))
}
