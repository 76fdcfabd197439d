package metastore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

func makeBatch(first uint64, n int) *batch {
	b := &batch{rows: make([]Row, n), n: n}
	for i := range n {
		b.rows[i] = testRow(first + uint64(i))
	}
	return b
}

// readAll reads every record from the cursor and returns the rows' seqs.
func readAll(t *testing.T, s *spool) []uint64 {
	t.Helper()
	var seqs []uint64
	var dst batch
	for {
		ok, err := s.read(&dst)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return seqs
		}
		for _, r := range dst.rows[:dst.n] {
			seqs = append(seqs, r.Seq)
		}
	}
}

func wantSeqs(t *testing.T, got []uint64, from, n uint64) {
	t.Helper()
	if uint64(len(got)) != n {
		t.Fatalf("got %d rows, want %d", len(got), n)
	}
	for i, s := range got {
		if s != from+uint64(i) {
			t.Fatalf("row %d has seq %d, want %d", i, s, from+uint64(i))
		}
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, segmentPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSpoolAppendReadCommit(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 8<<20) // 1 MiB segments: ~7600 rows each
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	const per = 1000
	for i := range 20 {
		if err := s.append(makeBatch(uint64(i*per), per)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Rows() != 20*per || len(segFiles(t, dir)) < 3 {
		t.Fatalf("rows %d, %d segments", s.Rows(), len(segFiles(t, dir)))
	}
	// Read half, fail, rewind: the same rows come again.
	var dst batch
	for range 10 {
		if ok, err := s.read(&dst); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	s.rewind()
	wantSeqs(t, readAll(t, s), 0, 20*per)
	// Appends while reading are seen in order after the rest.
	if err := s.append(makeBatch(20*per, per)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, readAll(t, s), 20*per, per)
	if err := s.commit(); err != nil {
		t.Fatal(err)
	}
	if s.Rows() != 0 || s.Bytes() != 0 || len(segFiles(t, dir)) != 0 {
		t.Fatalf("after full commit: rows %d bytes %d files %v", s.Rows(), s.Bytes(), segFiles(t, dir))
	}
	// The spool is usable again.
	if err := s.append(makeBatch(7, 3)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, readAll(t, s), 7, 3)
}

func TestSpoolReopenBackfills(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := s.append(makeBatch(uint64(i*500), 500)); err != nil {
			t.Fatal(err)
		}
	}
	// Consume the first 20 records (past the first segment), then "crash"
	// (close without reading on).
	var dst batch
	for range 20 {
		s.read(&dst)
	}
	if err := s.commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s2, err := openSpool(dir, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.close() })
	// Whole segments already read were deleted; a partly read one is read
	// again from its start (the sink's batch markers skip what was written).
	got := readAll(t, s2)
	if len(got) < 10*500 || len(got) >= 30*500 || got[len(got)-1] != 30*500-1 {
		t.Fatalf("reopened spool gave %d rows ending at %d", len(got), got[len(got)-1])
	}
	wantSeqs(t, got, got[0], uint64(len(got)))
	if s2.Rows() != uint64(len(got)) {
		t.Fatalf("Rows() = %d, read %d", s2.Rows(), len(got))
	}
	// New appends go to a new segment after the old ones.
	if err := s2.append(makeBatch(30*500, 10)); err != nil {
		t.Fatal(err)
	}
	wantSeqs(t, readAll(t, s2), 30*500, 10)
	s2.commit()
	if len(segFiles(t, dir)) != 0 {
		t.Fatalf("files left: %v", segFiles(t, dir))
	}
}

func TestSpoolFull(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	n := 0
	for {
		err := s.append(makeBatch(uint64(n), 100))
		if errors.Is(err, errSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += 100
	}
	if s.Bytes() > 1<<20 || n < 6000 { // 1 MiB of 160-byte rows: 6553 at most
		t.Fatalf("full at %d rows, %d bytes", n, s.Bytes())
	}
	wantSeqs(t, readAll(t, s), 0, uint64(n))
}

func TestSpoolCorruption(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		s.append(makeBatch(uint64(i*10), 10))
	}
	s.close()
	path := segFiles(t, dir)[0]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := recordHeader + 10*RowSize
	// Flip a byte in the third record's rows and tear the file mid-fourth.
	data[spoolHeaderSize+2*rec+recordHeader+5] ^= 1
	data = data[:spoolHeaderSize+3*rec+20]
	os.WriteFile(path, data, 0o600)
	// And a foreign file that looks like a segment.
	os.WriteFile(filepath.Join(dir, segmentName(99)), []byte("not a spool segment"), 0o600)

	s2, err := openSpool(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.close() })
	if _, err := os.Stat(filepath.Join(dir, segmentName(99)+".corrupt")); err != nil {
		t.Fatalf("foreign segment not set aside: %v", err)
	}
	wantSeqs(t, readAll(t, s2), 0, 20)
	s2.commit()
	if s2.corruptRecs != 2 || s2.corruptBytes != uint64(rec+20) {
		t.Fatalf("corrupt records %d bytes %d", s2.corruptRecs, s2.corruptBytes)
	}
	if len(segFiles(t, dir)) != 1 { // only the .corrupt file is left
		t.Fatalf("files: %v", segFiles(t, dir))
	}
}

// FuzzSpoolSegment reads an arbitrary file as a spool segment: rows or a
// counted corruption, never a panic or a huge allocation.
func FuzzSpoolSegment(f *testing.F) {
	dir := f.TempDir()
	s, _ := openSpool(dir, 64<<20)
	s.append(makeBatch(0, 2))
	s.close()
	valid, _ := os.ReadFile(filepath.Join(dir, segmentName(0)))
	f.Add(valid)                                                                                           // a segment with one 2-row record
	f.Add(valid[:spoolHeaderSize])                                                                         // header only
	f.Add(valid[:len(valid)-1])                                                                            // torn record
	f.Add(append(valid[:spoolHeaderSize:spoolHeaderSize], 0x51, 0x53, 0x52, 0x31, 0xff, 0xff, 0xff, 0x7f)) // huge row count
	f.Add([]byte("QOSSPOOL\x02\x00\x00\x00\x8a\x00\x00\x00"))                                              // other version
	fdir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// One directory for every input (creating one each time would
		// dominate): emptied, then given this input as its only segment.
		ents, _ := os.ReadDir(fdir)
		for _, e := range ents {
			os.Remove(filepath.Join(fdir, e.Name()))
		}
		dir := fdir
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := openSpool(dir, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		var dst batch
		for range 1000 {
			ok, err := s.read(&dst)
			if err != nil || !ok {
				break
			}
			if dst.n > len(data)/RowSize {
				t.Fatalf("%d rows from %d bytes", dst.n, len(data))
			}
		}
		s.commit()
	})
}

// writeLegacySegment writes rows as one record of a spool segment of the
// given version (1 or 2: legacyRowSize rows, as an older binary wrote them).
func writeLegacySegment(t *testing.T, path string, version uint32, rows []Row) {
	t.Helper()
	h := make([]byte, spoolHeaderSize, spoolHeaderSize+recordHeader+len(rows)*legacyRowSize)
	copy(h, spoolMagic)
	binary.LittleEndian.PutUint32(h[8:], version)
	binary.LittleEndian.PutUint32(h[12:], legacyRowSize)
	rec := make([]byte, recordHeader+len(rows)*legacyRowSize)
	var b [RowSize]byte
	for i := range rows {
		putRow(b[:], &rows[i])
		clear(b[131:])
		if version == 1 {
			b[130] = 0
		}
		copy(rec[recordHeader+i*legacyRowSize:], b[:legacyRowSize])
	}
	binary.LittleEndian.PutUint32(rec[0:], recordMagic)
	binary.LittleEndian.PutUint32(rec[4:], uint32(len(rows)))
	crc := crc32.Update(0, crcTable, rec[4:8])
	crc = crc32.Update(crc, crcTable, rec[recordHeader:])
	binary.LittleEndian.PutUint32(rec[8:], crc)
	if err := os.WriteFile(path, append(h, rec...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolReadsVersion1: a segment an older binary left (version 1,
// completed transactions only, legacyRowSize rows) is read, its rows as
// RowCompleted; new rows go to a version 3 segment with their kinds; a
// future version is set aside.
func TestSpoolReadsVersion1(t *testing.T) {
	dir := t.TempDir()
	writeLegacySegment(t, filepath.Join(dir, segmentName(0)), 1, makeBatch(0, 100).rows[:100])
	setVersion := func(path string, v byte) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{v, 0, 0, 0}, 8); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	s, err := openSpool(dir, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows() != 100 || s.corruptRecs != 0 {
		t.Fatalf("version 1 segment: %d rows, %d corrupt", s.Rows(), s.corruptRecs)
	}
	fb := &batch{rows: []Row{PenaltyRow(RowUnparsable, 100, 5, 2, testRow(1).IP, 42)}, n: 1}
	if err := s.append(fb); err != nil {
		t.Fatal(err)
	}
	var dst batch
	var kinds []RowKind
	for {
		ok, err := s.read(&dst)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		for _, r := range dst.rows[:dst.n] {
			kinds = append(kinds, r.Kind)
		}
	}
	if len(kinds) != 101 || kinds[0] != RowCompleted || kinds[99] != RowCompleted || kinds[100] != RowUnparsable {
		t.Fatalf("read %d rows, kinds %v…%v", len(kinds), kinds[:1], kinds[max(0, len(kinds)-2):])
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir)
	if len(segs) != 2 {
		t.Fatalf("segments %v", segs)
	}
	setVersion(segs[1], spoolVersion+1)
	s, err = openSpool(dir, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.Rows() != 100 || s.corruptRecs != 1 {
		t.Fatalf("with a future segment: %d rows, %d set aside; want 100, 1", s.Rows(), s.corruptRecs)
	}
}
