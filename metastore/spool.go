package metastore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The spool keeps batches the database could not take, in order, on disk:
// a directory of append-only segment files (format in doc.go). The writer
// appends to the newest segment; the reader reads from the oldest with a
// cursor that it commits once a batch is safely in Postgres (or rewinds
// after a failure). Fully read segments are deleted. Only the Sink's
// goroutine uses a spool.

const (
	spoolMagic = "QOSSPOOL"
	// spoolVersion is the version written. Version 1 segments (rows
	// without a kind: completed transactions only) and version 2 ones
	// (legacyRowSize rows, without pack mode's fields) are read too; a
	// binary that knows only version 1 sets later segments aside rather
	// than misread penalty rows as transactions, and one that knows
	// version 2 sets version 3 aside (its row size differs).
	spoolVersion    = 3
	spoolMinVersion = 1
	spoolHeaderSize = 16
	recordMagic     = 0x31525351 // "QSR1" little-endian
	recordHeader    = 12
	// maxRecordRows bounds a record read from disk before its checksum is
	// known, so a corrupt length cannot ask for a huge buffer.
	maxRecordRows = 1 << 20
	segmentPrefix = "spool-"
	segmentSuffix = ".qsp"
)

var (
	errSpoolFull = errors.New("spool full")
	crcTable     = crc32.MakeTable(crc32.Castagnoli)
)

type segment struct {
	seq     uint64
	path    string
	size    int64
	rowSize int // RowSize, or legacyRowSize for versions 1 and 2
}

type spool struct {
	dir      string
	maxBytes int64
	segBytes int64

	segs  []segment // oldest first; the last may be the write segment
	w     *os.File  // write segment (segs[len-1]) or nil
	bytes int64     // total size of segs on disk
	rows  uint64    // rows not yet committed
	next  uint64    // next segment sequence number

	// Reader: cursor (segment index, offset) and the committed position.
	rSeg, rOff   int
	cSeg, cOff   int
	rFile        *os.File // open handle on segs[rSeg]
	rFileSeq     uint64
	cursorRows   uint64 // rows read past the committed position
	corruptRecs  uint64 // corrupt records (or foreign segments) skipped
	corruptBytes uint64 // bytes skipped with them

	pendingCorruptRecs, pendingCorruptBytes uint64 // past the committed position

	buf []byte
}

func segmentName(seq uint64) string {
	return fmt.Sprintf("%s%016d%s", segmentPrefix, seq, segmentSuffix)
}

// openSpool opens dir (creating it), and indexes the segments left by an
// earlier run so that they are read first. Segments with a foreign header
// are renamed to *.corrupt and counted.
func openSpool(dir string, maxBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	segBytes := maxBytes / 8
	if segBytes < 1<<20 {
		segBytes = 1 << 20
	}
	if segBytes > 64<<20 {
		segBytes = 64 << 20
	}
	s := &spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, segmentPrefix)
		num, ok2 := strings.CutSuffix(num, segmentSuffix)
		if !ok || !ok2 || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		path := filepath.Join(dir, name)
		size, rows, rowSize, err := scanSegment(path)
		if err != nil {
			s.corruptRecs++
			if rerr := os.Rename(path, path+".corrupt"); rerr != nil {
				return nil, fmt.Errorf("spool %s: set aside %s: %w (after: %w)", dir, name, rerr, err)
			}
			continue
		}
		s.segs = append(s.segs, segment{seq: seq, path: path, size: size, rowSize: rowSize})
		s.bytes += size
		s.rows += rows
		if seq >= s.next {
			s.next = seq + 1
		}
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	s.rOff, s.cOff = spoolHeaderSize, spoolHeaderSize
	return s, nil
}

// scanSegment checks a segment's header and counts the rows announced by
// its record headers (checksums are verified when records are read).
func scanSegment(path string) (size int64, rows uint64, rowSize int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	size = st.Size()
	var h [spoolHeaderSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return size, 0, 0, fmt.Errorf("%s: short header: %w", path, err)
	}
	rowSize, err = checkSegmentHeader(h[:])
	if err != nil {
		return size, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	off := int64(spoolHeaderSize)
	var rh [recordHeader]byte
	for off+recordHeader <= size {
		if _, err := f.ReadAt(rh[:], off); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(rh[4:])
		if binary.LittleEndian.Uint32(rh[0:]) != recordMagic || n > maxRecordRows {
			break
		}
		end := off + recordHeader + int64(n)*int64(rowSize)
		if end > size {
			break
		}
		rows += uint64(n)
		off = end
	}
	return size, rows, rowSize, nil
}

// checkSegmentHeader checks a segment header and returns the size of its
// rows: legacyRowSize for versions 1 and 2, RowSize for version 3.
func checkSegmentHeader(h []byte) (int, error) {
	if string(h[:8]) != spoolMagic {
		return 0, errors.New("not a spool segment (bad magic)")
	}
	v := binary.LittleEndian.Uint32(h[8:])
	if v < spoolMinVersion || v > spoolVersion {
		return 0, fmt.Errorf("spool version %d, this binary reads %d to %d", v, spoolMinVersion, spoolVersion)
	}
	want := RowSize
	if v < 3 {
		want = legacyRowSize
	}
	if rs := binary.LittleEndian.Uint32(h[12:]); rs != uint32(want) {
		return 0, fmt.Errorf("row size %d, version %d uses %d", rs, v, want)
	}
	return want, nil
}

// Rows returns the rows waiting in the spool (not yet committed).
func (s *spool) Rows() uint64 { return s.rows }

// Bytes returns the spool's size on disk.
func (s *spool) Bytes() int64 { return s.bytes }

// Empty reports whether no rows wait.
func (s *spool) Empty() bool { return s.rows == 0 }

// append writes b as one record at the end of the spool.
func (s *spool) append(b *batch) error {
	if b.n == 0 {
		return nil
	}
	size := int64(recordHeader + b.n*RowSize)
	if s.bytes+size > s.maxBytes {
		return errSpoolFull
	}
	if s.w == nil || s.segs[len(s.segs)-1].size+size > s.segBytes {
		if err := s.rotate(); err != nil {
			return err
		}
		if s.bytes+size > s.maxBytes {
			return errSpoolFull
		}
	}
	if cap(s.buf) < int(size) {
		s.buf = make([]byte, size)
	}
	buf := s.buf[:size]
	for i := range b.n {
		putRow(buf[recordHeader+i*RowSize:], &b.rows[i])
	}
	binary.LittleEndian.PutUint32(buf[0:], recordMagic)
	binary.LittleEndian.PutUint32(buf[4:], uint32(b.n))
	crc := crc32.Update(0, crcTable, buf[4:8])
	crc = crc32.Update(crc, crcTable, buf[recordHeader:])
	binary.LittleEndian.PutUint32(buf[8:], crc)
	seg := &s.segs[len(s.segs)-1]
	n, err := s.w.Write(buf)
	seg.size += int64(n)
	s.bytes += int64(n)
	if err != nil {
		// A torn record may end this segment; never append after it.
		s.closeWriter()
		return fmt.Errorf("spool %s: append: %w", seg.path, err)
	}
	s.rows += uint64(b.n)
	return nil
}

// rotate starts a new write segment.
func (s *spool) rotate() error {
	s.closeWriter()
	seq := s.next
	path := filepath.Join(s.dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool %s: create segment: %w", s.dir, err)
	}
	var h [spoolHeaderSize]byte
	copy(h[:], spoolMagic)
	binary.LittleEndian.PutUint32(h[8:], spoolVersion)
	binary.LittleEndian.PutUint32(h[12:], RowSize)
	if _, err := f.Write(h[:]); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool %s: write header: %w", path, err)
	}
	s.next++
	s.w = f
	s.segs = append(s.segs, segment{seq: seq, path: path, size: spoolHeaderSize, rowSize: RowSize})
	s.bytes += spoolHeaderSize
	return nil
}

func (s *spool) closeWriter() {
	if s.w == nil {
		return
	}
	_ = s.w.Sync()
	_ = s.w.Close()
	s.w = nil
}

// isWriteSeg reports whether segs[i] is the segment being appended to.
func (s *spool) isWriteSeg(i int) bool { return s.w != nil && i == len(s.segs)-1 }

// read decodes the record at the cursor into dst (growing it if needed) and
// advances the cursor. It returns false when the cursor reached the end of
// what was written. A corrupt or torn record ends its segment: the rest of
// the segment is counted as corrupt and skipped.
func (s *spool) read(dst *batch) (bool, error) {
	for s.rSeg < len(s.segs) {
		seg := s.segs[s.rSeg]
		if int64(s.rOff)+recordHeader > seg.size {
			if s.isWriteSeg(s.rSeg) {
				return false, nil
			}
			if int64(s.rOff) < seg.size {
				s.corrupt(seg) // a torn record header
			} else {
				s.skipRest(seg)
			}
			continue
		}
		if err := s.openReader(seg); err != nil {
			return false, err
		}
		var rh [recordHeader]byte
		if _, err := s.rFile.ReadAt(rh[:], int64(s.rOff)); err != nil {
			return false, fmt.Errorf("spool %s: read at %d: %w", seg.path, s.rOff, err)
		}
		n := int(binary.LittleEndian.Uint32(rh[4:]))
		end := int64(s.rOff) + recordHeader + int64(n)*int64(seg.rowSize)
		if binary.LittleEndian.Uint32(rh[0:]) != recordMagic || n > maxRecordRows || end > seg.size {
			s.corrupt(seg)
			continue
		}
		size := n * seg.rowSize
		if cap(s.buf) < size {
			s.buf = make([]byte, size)
		}
		buf := s.buf[:size]
		if _, err := s.rFile.ReadAt(buf, int64(s.rOff)+recordHeader); err != nil {
			return false, fmt.Errorf("spool %s: read at %d: %w", seg.path, s.rOff, err)
		}
		crc := crc32.Update(0, crcTable, rh[4:8])
		crc = crc32.Update(crc, crcTable, buf)
		if crc != binary.LittleEndian.Uint32(rh[8:]) {
			s.corrupt(seg)
			continue
		}
		if len(dst.rows) < n {
			dst.rows = make([]Row, n)
		}
		for i := range n {
			getRow(buf[i*seg.rowSize:], &dst.rows[i], seg.rowSize)
		}
		dst.n = n
		s.rOff = int(end)
		s.cursorRows += uint64(n)
		return true, nil
	}
	return false, nil
}

// corrupt skips the rest of seg from the cursor, counting it when the
// cursor is committed.
func (s *spool) corrupt(seg segment) {
	s.pendingCorruptRecs++
	s.pendingCorruptBytes += uint64(seg.size - int64(s.rOff))
	s.skipRest(seg)
}

// skipRest moves the cursor to the next segment. If seg is the write
// segment (a failed append left a torn record), the writer rotates first.
func (s *spool) skipRest(seg segment) {
	if s.isWriteSeg(s.rSeg) {
		s.closeWriter()
	}
	s.rSeg++
	s.rOff = spoolHeaderSize
}

func (s *spool) openReader(seg segment) error {
	if s.rFile != nil && s.rFileSeq == seg.seq {
		return nil
	}
	if s.rFile != nil {
		s.rFile.Close()
		s.rFile = nil
	}
	f, err := os.Open(seg.path)
	if err != nil {
		return fmt.Errorf("spool %s: %w", seg.path, err)
	}
	s.rFile, s.rFileSeq = f, seg.seq
	return nil
}

// commit makes everything read so far permanent: those rows are in
// Postgres. Segments read to their end are deleted, the write segment too
// once everything was read (the next append starts a new one).
func (s *spool) commit() error {
	s.rows -= min(s.rows, s.cursorRows)
	s.cursorRows = 0
	s.corruptRecs += s.pendingCorruptRecs
	s.corruptBytes += s.pendingCorruptBytes
	s.pendingCorruptRecs, s.pendingCorruptBytes = 0, 0
	done := s.rSeg // segments before the cursor's were read to their end
	if s.rSeg < len(s.segs) && int64(s.rOff) >= s.segs[s.rSeg].size {
		if s.isWriteSeg(s.rSeg) {
			// Read to its end: delete it without syncing.
			_ = s.w.Close()
			s.w = nil
		}
		done = s.rSeg + 1
	}
	var err error
	for _, seg := range s.segs[:done] {
		if s.rFile != nil && s.rFileSeq == seg.seq {
			s.rFile.Close()
			s.rFile = nil
		}
		if rerr := os.Remove(seg.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("spool: remove %s: %w", seg.path, rerr))
		}
		s.bytes -= seg.size
	}
	s.segs = append(s.segs[:0], s.segs[done:]...)
	if done > s.rSeg {
		s.rOff = spoolHeaderSize
	}
	s.rSeg -= min(done, s.rSeg)
	s.cSeg, s.cOff = s.rSeg, s.rOff
	if len(s.segs) == 0 {
		s.rows = 0 // everything was read, including rows lost to corruption
	}
	return err
}

// rewind moves the cursor back to the last commit: those records will be
// read again.
func (s *spool) rewind() {
	s.rSeg, s.rOff = s.cSeg, s.cOff
	s.cursorRows = 0
	s.pendingCorruptRecs, s.pendingCorruptBytes = 0, 0
}

// close syncs and closes the files; unread segments stay for the next run.
func (s *spool) close() error {
	var err error
	if s.w != nil {
		if serr := s.w.Sync(); serr != nil {
			err = fmt.Errorf("spool %s: sync: %w", s.dir, serr)
		}
		if cerr := s.w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("spool %s: close: %w", s.dir, cerr)
		}
		s.w = nil
	}
	if s.rFile != nil {
		s.rFile.Close()
		s.rFile = nil
	}
	return err
}
