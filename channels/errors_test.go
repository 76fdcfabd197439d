package channels

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// writeFile writes a file of size bytes whose header carries magic and
// capacity.
func writeFile(tb testing.TB, path string, size int64, magic, capacity uint64) {
	tb.Helper()
	b := make([]byte, size)
	if size >= HeaderSize {
		binary.LittleEndian.PutUint64(b[offMagic:], magic)
		binary.LittleEndian.PutUint64(b[offCapacity:], capacity)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// wantErr checks that err is an *Error for path matching sentinel, whose
// one-line message names the file and contains every hint.
func wantErr(tb testing.TB, err error, sentinel error, path string, hints ...string) {
	tb.Helper()
	if !errors.Is(err, sentinel) {
		tb.Fatalf("got %v, want %v", errString(err), sentinel)
	}
	var e *Error
	if !errors.As(err, &e) || e.Err != sentinel {
		tb.Fatalf("%v is not an *Error with Err %v", err, sentinel)
	}
	if e.Path != path || !strings.Contains(err.Error(), path) {
		tb.Errorf("error %q does not name %s", err, path)
	}
	for _, h := range hints {
		if !strings.Contains(err.Error(), h) {
			tb.Errorf("error %q lacks %q", err, h)
		}
	}
	oneLine(tb, err)
}

func TestJoinErrors(t *testing.T) {
	const capacity = 16
	s := specFor[Packet]("bad", capacity)
	good := s.MinSize()
	for _, tc := range []struct {
		name     string
		setup    func(path string) // nil: no file
		sentinel error
		producer error // what OpenProducer says (nil: it succeeds)
		hints    []string
	}{
		{name: "missing", sentinel: ErrNotExist, hints: []string{"qos-cli init"}},
		{name: "empty", setup: func(p string) { writeFile(t, p, 0, 0, 0) }, sentinel: ErrNotInitialised},
		{name: "zeroed", setup: func(p string) { writeFile(t, p, good, 0, 0) }, sentinel: ErrNotInitialised, hints: []string{"magic is 0"}},
		{name: "corrupt", setup: func(p string) { writeFile(t, p, good, 0x2121454741424147, capacity) },
			sentinel: ErrCorrupt, producer: ErrCorrupt, hints: []string{"TEMPORAL", "qos-cli remove"}},
		{name: "capacity", setup: func(p string) { writeFile(t, p, good, Magic, 32) },
			sentinel: ErrCapacity, producer: ErrCapacity, hints: []string{"capacity 32", "expects 16"}},
		{name: "short", setup: func(p string) { writeFile(t, p, good-1, Magic, capacity) },
			sentinel: ErrFileSize, producer: ErrFileSize, hints: []string{"needs " + strconv.FormatInt(good, 10)}},
		{name: "long", setup: func(p string) { writeFile(t, p, good+int64(os.Getpagesize())+1, Magic, capacity) },
			sentinel: ErrFileSize, producer: ErrFileSize},
		{name: "tiny", setup: func(p string) { writeFile(t, p, 100, 0, 0) }, sentinel: ErrFileSize, producer: ErrFileSize, hints: []string{"640-byte header"}},
		{name: "zeroed-short", setup: func(p string) { writeFile(t, p, good-8, 0, 0) }, sentinel: ErrNotInitialised, producer: ErrFileSize},
		{name: "page-rounded", setup: func(p string) { writeFile(t, p, roundUp(good, int64(os.Getpagesize())), Magic, capacity) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t)
			path := o.Path(s.Name)
			if tc.setup != nil {
				tc.setup(path)
			}
			c, err := OpenConsumer[Packet](o, s)
			if tc.sentinel == nil {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			} else {
				wantErr(t, err, tc.sentinel, path, tc.hints...)
				if _, ierr := Inspect(o, s); !errors.Is(ierr, tc.sentinel) {
					t.Errorf("Inspect: %v, want %v", ierr, tc.sentinel)
				}
			}
			if tc.name == "missing" {
				return // the producer would create it
			}
			before, _ := os.ReadFile(path)
			p, err := OpenProducer[Packet](o, s)
			if tc.producer != nil {
				wantErr(t, err, tc.producer, path)
				if after, _ := os.ReadFile(path); string(after) != string(before) {
					t.Error("a refused producer changed the file")
				}
				return
			}
			if err != nil {
				t.Fatalf("producer: %v", err)
			}
			p.Close()
			// Now initialised: the consumer joins.
			c, err = OpenConsumer[Packet](o, s)
			if err != nil {
				t.Fatalf("consumer after producer init: %v", err)
			}
			c.Close()
		})
	}
}

func TestInvalidSpec(t *testing.T) {
	o := testOptions(t)
	for _, s := range []Spec{
		{Name: "cap3", Capacity: 3, RecordSize: PacketSize},
		{Name: "cap1", Capacity: 1, RecordSize: PacketSize},
		{Name: "cap0", Capacity: 0, RecordSize: PacketSize},
		{Name: "huge", Capacity: 1 << 40, RecordSize: PacketSize},
		{Name: "a/b", Capacity: 8, RecordSize: PacketSize},
		{Name: "", Capacity: 8, RecordSize: PacketSize},
	} {
		if _, err := OpenProducer[Packet](o, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", s, err)
		}
		if _, err := Create(o, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create %+v: %v", s, err)
		}
	}
	// The record type must match the spec.
	if _, err := OpenProducer[Signature](o, specFor[Packet]("x", 8)); !errors.Is(err, ErrInvalid) {
		t.Errorf("record size mismatch: %v", err)
	}
	if _, err := OpenConsumer[Packet](o, specFor[RemainingMeta]("x", 8)); !errors.Is(err, ErrInvalid) {
		t.Errorf("record size mismatch: %v", err)
	}
	if _, err := Create(Options{ShmDir: o.ShmDir, Prefix: "a/"}, specFor[Packet]("x", 8)); !errors.Is(err, ErrInvalid) {
		t.Errorf("prefix with '/': %v", err)
	}
}

func TestRemove(t *testing.T) {
	o := testOptions(t)
	s := specFor[Signature]("rm", 8)
	if err := Remove(o, s); !errors.Is(err, ErrNotExist) {
		t.Fatalf("remove missing: %v", err)
	}
	if created, err := Create(o, s); err != nil || !created {
		t.Fatalf("Create: %v %v", created, err)
	}
	if created, err := Create(o, s); err != nil || created {
		t.Fatalf("second Create: %v %v", created, err)
	}
	if err := Remove(o, s); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.Path(s.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file still there: %v", err)
	}
}

func TestCreateModes(t *testing.T) {
	o := testOptions(t)
	s := specFor[Signature]("mode", 8)
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	st, err := Inspect(o, s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode.Perm() != 0o600 || st.State != "ok" || st.Capacity != 8 || st.Magic != Magic {
		t.Fatalf("status %+v", st)
	}

	// With a group: 0660 and that group.
	g := groupForTest(t)
	o.Group = g.Name
	s.Name = "group"
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	if st, err = Inspect(o, s); err != nil {
		t.Fatal(err)
	}
	if st.Mode.Perm() != 0o660 || strconv.Itoa(int(st.GID)) != g.Gid {
		t.Fatalf("mode %v gid %d, want 0660 gid %s", st.Mode, st.GID, g.Gid)
	}
	// The group can also be given by number.
	o.Group, s.Name = g.Gid, "gid"
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	o.Group, s.Name = "no-such-group-qos", "nogroup"
	_, err = Create(o, s)
	wantErr(t, err, ErrGroup, o.Path(s.Name), "no-such-group-qos")
	if _, err := os.Stat(o.Path(s.Name)); err == nil {
		t.Error("a file was left behind")
	}
}

// groupForTest returns a group the test may chgrp to: nogroup as root
// (so that TestPermissionDenied can use it as nobody), otherwise the
// user's own primary group.
func groupForTest(tb testing.TB) *user.Group {
	tb.Helper()
	if os.Geteuid() == 0 {
		if g, err := user.LookupGroupId("65534"); err == nil {
			return g
		}
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
	if err != nil {
		tb.Skipf("no group to test with: %v", err)
	}
	return g
}

// TestPermissionDenied checks a real permission failure. As root (whom
// modes do not stop) the check runs in a child process as nobody; as
// another user, on a file of mode 0000.
func TestPermissionDenied(t *testing.T) {
	s := specFor[Packet](childName, 8)
	if os.Geteuid() != 0 {
		o := testOptions(t)
		if _, err := Create(o, s); err != nil {
			t.Fatal(err)
		}
		path := o.Path(s.Name)
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		_, err := OpenConsumer[Packet](o, s)
		wantErr(t, err, ErrPermission, path, "--group")
		_, err = OpenProducer[Packet](o, s)
		wantErr(t, err, ErrPermission, path)
		_, err = Inspect(o, s)
		wantErr(t, err, ErrPermission, path)
		return
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	o := testOptions(t)
	if err := os.Chmod(o.ShmDir, 0o755); err != nil { // let nobody reach the file itself
		t.Fatal(err)
	}
	if _, err := Create(o, s); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"join", "create", "inspect"} {
		out := startChild(t, role, o, "packet", 8, 0, false, nobody).wait(t)
		t.Logf("%s as nobody: %s", role, out)
		if !strings.HasPrefix(out, "ErrPermission: ") || !strings.Contains(out, o.Path(s.Name)) {
			t.Errorf("%s as nobody on a 0600 root file: %q", role, out)
		}
	}
	// Creating in a directory nobody cannot write.
	o2 := o
	o2.Prefix = "other_"
	if out := startChild(t, "create", o2, "packet", 8, 0, false, nobody).wait(t); !strings.HasPrefix(out, "ErrPermission: ") {
		t.Errorf("create as nobody in a root directory: %q", out)
	}
	// With --group nogroup the file is 0660 root:nogroup, and nobody joins.
	og := o
	og.Prefix, og.Group = "grp_", "65534"
	if _, err := Create(og, s); err != nil {
		t.Fatal(err)
	}
	if out := startChild(t, "join", og, "packet", 8, 0, false, nobody).wait(t); out != "ok" {
		t.Errorf("join as nobody with group access: %q", out)
	}
}

func TestHugetlbfsNotMounted(t *testing.T) {
	dir := t.TempDir()
	s := specFor[Packet]("hp", 8)
	for _, d := range []string{dir, dir + "/missing"} {
		o := Options{HugePages: true, HugetlbfsDir: d}
		_, err := OpenProducer[Packet](o, s)
		wantErr(t, err, ErrHugetlbfs, d, "mount -t hugetlbfs")
		_, err = Create(o, s)
		wantErr(t, err, ErrHugetlbfs, d)
		_, err = OpenConsumer[Packet](o, s)
		wantErr(t, err, ErrHugetlbfs, d)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Path: "/dev/shm/x", Op: "join", Err: ErrCapacity, Detail: "file has capacity 8", Remedy: "do this", Cause: fs.ErrPermission}
	want := "channels: join /dev/shm/x: capacity mismatch: file has capacity 8 (permission denied); do this"
	if e.Error() != want {
		t.Errorf("got  %q\nwant %q", e.Error(), want)
	}
	if !errors.Is(e, ErrCapacity) || !errors.Is(e, fs.ErrPermission) || errors.Is(e, ErrCorrupt) {
		t.Error("errors.Is does not see the sentinel and the cause")
	}
}
