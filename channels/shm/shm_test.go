package shm

import (
	"errors"
	"os"
	"strconv"
	"testing"
)

func TestCreateRoundsAndShares(t *testing.T) {
	tests := []struct {
		size, want int
	}{{1, 4096}, {4096, 4096}, {4097, 8192}, {3 << 20, 3 << 20}}
	for _, tt := range tests {
		r, err := Create("shm-test", tt.size, false)
		if err != nil {
			t.Fatal(err)
		}
		if r.Len() != tt.want || r.Huge() || r.HugeRefused() != nil {
			t.Errorf("size %d: len %d huge %v refused %v, want len %d", tt.size, r.Len(), r.Huge(), r.HugeRefused(), tt.want)
		}
		// A second mapping of the same file (as a peer process gets from
		// SCM_RIGHTS) sees the same bytes.
		m, err := MapFile(dupFile(t, r.File()))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Slice(r.Len()-1, 1)
		b[0] = 0x5a
		if mb, _ := m.Slice(m.Len()-1, 1); m.Len() != r.Len() || mb[0] != 0x5a {
			t.Errorf("second mapping: len %d, last byte %#x", m.Len(), mb[0])
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

func dupFile(t *testing.T, f *os.File) *os.File {
	t.Helper()
	g, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestHugePages: asking for huge pages either gets them (size rounded to
// 2 MiB) or falls back to standard pages and says why. This machine may
// have none reserved, which exercises the fallback.
func TestHugePages(t *testing.T) {
	r, err := Create("shm-huge", 100, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	switch {
	case r.Huge():
		if r.Len() != HugePageSize || r.HugeRefused() != nil {
			t.Fatalf("huge: len %d refused %v", r.Len(), r.HugeRefused())
		}
		m, err := MapFile(dupFile(t, r.File()))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if !m.Huge() {
			t.Fatal("mapped huge file not reported huge")
		}
	default:
		if r.Len() != PageSize || r.HugeRefused() == nil {
			t.Fatalf("fallback: len %d refused %v", r.Len(), r.HugeRefused())
		}
		t.Logf("huge pages refused: %v", r.HugeRefused())
	}
}

func TestBounds(t *testing.T) {
	r, err := Create("shm-bounds", 4096, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off, n int
		ok     bool
	}{
		{0, 4096, true}, {4095, 1, true}, {4096, 0, true},
		{4096, 1, false}, {-1, 1, false}, {0, -1, false}, {1, 4096, false},
		{1 << 62, 1 << 62, false}, {4000, 1 << 62, false},
	}
	for _, tt := range tests {
		b, err := r.Slice(tt.off, tt.n)
		if tt.ok != (err == nil) || (err == nil && len(b) != tt.n) {
			t.Errorf("Slice(%d, %d): %d bytes, %v", tt.off, tt.n, len(b), err)
		}
		if err != nil && !errors.Is(err, ErrBounds) {
			t.Errorf("Slice(%d, %d): %v is not ErrBounds", tt.off, tt.n, err)
		}
	}
	if _, err := r.Uint64(4); !errors.Is(err, ErrBounds) {
		t.Errorf("misaligned Uint64: %v", err)
	}
	if _, err := r.Uint64(4088); err != nil {
		t.Errorf("last word: %v", err)
	}
	if _, err := r.Uint64(4096); !errors.Is(err, ErrBounds) {
		t.Errorf("Uint64 past the end: %v", err)
	}
	if _, err := r.Uint32(2); !errors.Is(err, ErrBounds) {
		t.Errorf("misaligned Uint32: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Slice(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

func TestMapFileErrors(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MapFile(f); !errors.Is(err, ErrSize) {
		t.Errorf("empty file: %v", err)
	}
	f.Close()
	if _, err := MapFile(f); err == nil {
		t.Error("closed file mapped")
	}
	if _, err := Create("bad", 0, false); !errors.Is(err, ErrSize) {
		t.Errorf("zero size: %v", err)
	}
}
