package handshake

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/solqos/qos/agave/bindings"
)

func sampleLogon() Logon {
	return Logon{
		WorkerCount: 4, CheckWorkerCount: 2, AllocatorSize: 1 << 30, AllocatorHandles: 3,
		TpuToPackCapacity: 65536, ProgressCapacity: 256, PackToWorkerCapacity: 1024, WorkerToPackCapacity: 1025,
		PackToCheckCapacity: 1026, CheckToPackCapacity: 1027, Flags: 0,
	}
}

// TestLogonGolden checks every offset of the 1024-byte logon per profile
// against the research note §2 (agave 8e3bcf0c / 091bee17 shared.rs,
// agave-sdk 1c2a26aa shared.rs).
func TestLogonGolden(t *testing.T) {
	l := sampleLogon()
	l.Flags = 0x0102
	type at struct {
		off int
		val uint64
	}
	legacy := []at{{8, 4}, {16, 1 << 30}, {24, 3}, {32, 65536}, {40, 256}, {48, 1024}, {56, 1025}}
	for _, c := range []struct {
		p      bindings.Profile
		fields []at
		flags  at // u16 flags for the VERSION formats, u64 for the tuple
		end    int
	}{
		{bindings.Profile40, append([]at{{0, 3}}, legacy...), at{64, 0x0102}, 72},
		{bindings.Profile41, append([]at{{0, 4}}, legacy...), at{64, 0x0102}, 72},
		{bindings.Profile43, append(append([]at{{0, 5}}, legacy...), at{72, 1026}, at{80, 1027}), at{64, 0x0102}, 88},
		{bindings.Profile44, []at{{0, 6}, {8, 6}, {16, 0x30000}, {24, 0x40000},
			{32, 4}, {40, 2}, {48, 1 << 30}, {56, 3}, {64, 65536}, {72, 256}, {80, 1024}, {88, 1025}, {96, 1026}, {104, 1027}, {112, 0x0102}},
			at{112, 0x0102}, 120},
	} {
		t.Run(c.p.Name, func(t *testing.T) {
			buf := make([]byte, MessageSize)
			for i := range buf {
				buf[i] = 0xAA
			}
			if err := EncodeLogon(c.p, l, buf); err != nil {
				t.Fatal(err)
			}
			for _, f := range c.fields {
				if got := binary.LittleEndian.Uint64(buf[f.off:]); got != f.val && f.off != c.flags.off {
					t.Errorf("@%d = %#x, want %#x", f.off, got, f.val)
				}
			}
			if c.p.Handshake == bindings.HandshakeVersion {
				if got := binary.LittleEndian.Uint16(buf[c.flags.off:]); uint64(got) != c.flags.val {
					t.Errorf("flags u16 @%d = %#x", c.flags.off, got)
				}
				for i := c.flags.off + 2; i < c.flags.off+8; i++ {
					if buf[i] != 0 {
						t.Errorf("padding byte %d after flags = %#x", i, buf[i])
					}
				}
			} else if got := binary.LittleEndian.Uint64(buf[c.flags.off:]); got != c.flags.val {
				t.Errorf("flags u64 @%d = %#x", c.flags.off, got)
			}
			if c.end != c.p.PrefixSize()+c.p.LogonSize {
				t.Errorf("logon ends @%d, profile says %d", c.end, c.p.PrefixSize()+c.p.LogonSize)
			}
			for i := c.end; i < MessageSize; i++ {
				if buf[i] != 0 {
					t.Fatalf("byte %d after the logon = %#x, want 0", i, buf[i])
				}
			}
			got, err := DecodeLogon(c.p, buf)
			if err != nil {
				t.Fatal(err)
			}
			want := l
			if !c.p.CheckWorkerCount {
				want.CheckWorkerCount = 0
			}
			if c.p.LogonSize < 80 {
				want.PackToCheckCapacity, want.CheckToPackCapacity = 0, 0
			}
			if got != want {
				t.Errorf("decode\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if err := EncodeLogon(bindings.Profile40, Logon{Flags: 1 << 16}, make([]byte, MessageSize)); err == nil {
		t.Error("a u64 flag accepted by a u16 logon")
	}
	if err := EncodeLogon(bindings.Profile40, Logon{}, make([]byte, 10)); err == nil {
		t.Error("short buffer accepted")
	}
}

// TestDecodeLogonRefusals: the server's checks and Agave's reason texts
// (AgaveHandshakeError Display in the cited shared.rs files).
func TestDecodeLogonRefusals(t *testing.T) {
	enc := func(p bindings.Profile, mod func(*Logon)) []byte {
		l := sampleLogon()
		if mod != nil {
			mod(&l)
		}
		b := make([]byte, MessageSize)
		if err := EncodeLogon(p, l, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name      string
		server    bindings.Profile
		msg       []byte
		reason    string
		versionOK bool
		profile   string
	}{
		{"4.0 server, 4.1 client", bindings.Profile40, enc(bindings.Profile41, nil), "Version; server=3; client=4", true, "4.0"},
		{"4.1 server, 4.4 client", bindings.Profile41, enc(bindings.Profile44, nil), "Version; server=4; client=6", true, "4.1"},
		{"4.3 server, 4.0 client", bindings.Profile43, enc(bindings.Profile40, nil), "Version; server=5; client=3", true, "4.3"},
		{"4.4 server, 4.0 client", bindings.Profile44, enc(bindings.Profile40, nil),
			"Version; server=(handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144); client=(handshake=3, scheduler-bindings=4, shaq=1073741824, rts-alloc=3)", true, "4.4"},
		{"workers 0", bindings.Profile40, enc(bindings.Profile40, func(l *Logon) { l.WorkerCount = 0 }), "Worker count; count=0", false, ""},
		{"workers 65", bindings.Profile41, enc(bindings.Profile41, func(l *Logon) { l.WorkerCount = 65 }), "Worker count; count=65", false, ""},
		{"check workers 0", bindings.Profile44, enc(bindings.Profile44, func(l *Logon) { l.CheckWorkerCount = 0 }), "Check worker count; count=0", false, ""},
		{"check workers 65", bindings.Profile44, enc(bindings.Profile44, func(l *Logon) { l.CheckWorkerCount = 65 }), "Check worker count; count=65", false, ""},
		{"handles 0", bindings.Profile43, enc(bindings.Profile43, func(l *Logon) { l.AllocatorHandles = 0 }), "Allocator handles; count=0", false, ""},
		{"handles 129", bindings.Profile44, enc(bindings.Profile44, func(l *Logon) { l.AllocatorHandles = 129 }), "Allocator handles; count=129", false, ""},
		{"short", bindings.Profile40, make([]byte, 100), "Close during handshake", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeLogon(c.server, c.msg)
			var r *RefusalError
			if !errors.As(err, &r) || r.Reason != c.reason {
				t.Fatalf("err %v, want reason %q", err, c.reason)
			}
			// What the client makes of the reason it receives.
			got := parseRefusal("sock", r.Reason)
			if got.VersionRefused != c.versionOK {
				t.Fatalf("VersionRefused = %v", got.VersionRefused)
			}
			if c.versionOK {
				p, ok := got.ProfileFor()
				if !ok || p.Name != c.profile {
					t.Fatalf("ProfileFor = %s, %v; want %s", p.Name, ok, c.profile)
				}
			}
		})
	}
}

func TestParseRefusalOddReasons(t *testing.T) {
	for _, reason := range []string{"", "Version; server=", "Version; server=x; client=1", "Version; server=(handshake=6", "Version; server=(a=1); client=()",
		"Version; server=(handshake=6, scheduler-bindings=6, shaq=1); client=()", "Timeout", "Rts alloc; err=Io(..)"} {
		r := parseRefusal("s", reason)
		if r.VersionRefused {
			t.Errorf("%q parsed as a version refusal: %+v", reason, r)
		}
		if r.Reason != reason {
			t.Errorf("reason not verbatim: %q", r.Reason)
		}
	}
	r := parseRefusal("s", "Version; server=9; client=6")
	if !r.VersionRefused || r.ServerVersion != 9 {
		t.Fatalf("%+v", r)
	}
	if _, ok := r.ProfileFor(); ok {
		t.Error("version 9 matched a profile")
	}
	if msg := r.Error(); msg != "agave scheduler-bindings server at s refused the logon: Version; server=9; client=6 (the validator speaks handshake version 9, which no profile of this build supports)" {
		t.Errorf("message: %s", msg)
	}
}

func TestRefusalNamesUnknownTuple(t *testing.T) {
	r := parseRefusal("s", "Version; server=(handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262145); client=(handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144)")
	if !r.VersionRefused || r.ServerVersions.RtsAlloc != 262145 {
		t.Fatalf("%+v", r)
	}
	if _, ok := r.ProfileFor(); ok {
		t.Fatal("an unknown rts-alloc version matched a profile")
	}
	if !strings.Contains(r.Error(), "speaks handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262145, which no profile") {
		t.Errorf("message: %s", r.Error())
	}
}

func FuzzParseRefusal(f *testing.F) {
	f.Add("Version; server=3; client=4")
	f.Add("Version; server=(handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144); client=(handshake=3)")
	f.Fuzz(func(t *testing.T, reason string) {
		r := parseRefusal("s", reason)
		if r.Reason != reason {
			t.Fatal("reason changed")
		}
		_ = r.Error()
		_, _ = r.ProfileFor()
	})
}

// FuzzDecodeLogon: the server parses 1024 bytes from any local process.
// Whatever they hold: no panic; a refusal or a logon within the limits; and
// an accepted logon re-encodes to the same bytes.
func FuzzDecodeLogon(f *testing.F) {
	for _, p := range bindings.Profiles() {
		b := make([]byte, MessageSize)
		if err := EncodeLogon(p, sampleLogon(), b); err != nil {
			f.Fatal(err)
		}
		f.Add(b[:128])
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		msg := make([]byte, MessageSize)
		copy(msg, head)
		for _, p := range bindings.Profiles() {
			l, err := DecodeLogon(p, msg)
			if err != nil {
				var r *RefusalError
				if !errors.As(err, &r) || r.Reason == "" || len(r.Reason) > 255 {
					t.Fatalf("%s: %v", p.Name, err)
				}
				continue
			}
			if l.WorkerCount < 1 || l.WorkerCount > MaxWorkers || l.AllocatorHandles < 1 || l.AllocatorHandles > MaxAllocatorHandles {
				t.Fatalf("%s accepted %+v", p.Name, l)
			}
			again := make([]byte, MessageSize)
			if err := EncodeLogon(p, l, again); err != nil {
				t.Fatal(err)
			}
			end := p.PrefixSize() + p.LogonSize
			want := append([]byte(nil), msg[:end]...)
			if p.Handshake == bindings.HandshakeVersion {
				clear(want[8+58 : 8+64]) // padding after the u16 flags
			}
			if string(again[:end]) != string(want) {
				t.Fatalf("%s: re-encoded logon differs", p.Name)
			}
		}
	})
}
