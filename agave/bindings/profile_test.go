package bindings

import (
	"strings"
	"testing"
)

func TestParseProfile(t *testing.T) {
	for _, c := range []struct {
		in, name string
		abi      ABI
		auto     bool
		err      string
	}{
		{"4.0", "4.0", ABI40, false, ""},
		{"4.1", "4.1", ABI41, false, ""},
		{"4.2", "4.1", ABI41, false, ""},
		{"4.3", "4.3", ABI41, false, ""},
		{" 4.4 ", "4.4", ABI44, false, ""},
		{"auto", "auto", 0, true, ""},
		{"3.1", "", 0, false, `unknown Agave ABI profile "3.1": want one of 4.0, 4.1, 4.3, 4.4, auto`},
		{"", "", 0, false, "unknown Agave ABI profile"},
	} {
		p, err := ParseProfile(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseProfile(%q) err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || p.Name != c.name || p.ABI != c.abi || p.IsAuto() != c.auto {
			t.Errorf("ParseProfile(%q) = %+v, %v", c.in, p, err)
		}
	}
}

func TestProfileFacts(t *testing.T) {
	// Per the research note §1–§2 and the sources cited on each profile.
	for _, c := range []struct {
		p                           Profile
		version                     uint64
		prefix, logon, global, fds4 int
		shaq                        ShaqFormat
		rts                         RtsAllocFormat
		explicit                    bool
	}{
		{Profile40, 3, 8, 64, 3, 11, ShaqV1_0_2, RtsAllocV2, true},
		{Profile41, 4, 8, 64, 3, 11, ShaqV3, RtsAllocV4, false},
		{Profile43, 5, 8, 80, 5, 13, ShaqV3, RtsAllocV4, false},
		{Profile44, 6, 32, 88, 5, 13, ShaqV4, RtsAllocV5, false},
	} {
		p := c.p
		if p.Version != c.version || p.PrefixSize() != c.prefix || p.LogonSize != c.logon || p.GlobalFds() != c.global ||
			p.FdCount(4) != c.fds4 || p.Shaq != c.shaq || p.RtsAlloc != c.rts || p.ExplicitSlots != c.explicit {
			t.Errorf("profile %s: %+v", p.Name, p)
		}
		if p.PrefixSize()+p.LogonSize > 1024 {
			t.Errorf("profile %s logon does not fit 1024 bytes", p.Name)
		}
		if p.Source == "" {
			t.Errorf("profile %s cites no source", p.Name)
		}
	}
	if v := Profile44.Versions; v != (ProtocolVersions{6, 6, 0x30000, 0x40000}) {
		t.Errorf("4.4 versions %+v", v)
	}
	if got := Profile44.Versions.String(); got != "handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144" {
		t.Errorf("versions display %q", got)
	}
	for v, want := range map[uint64]string{3: "4.0", 4: "4.1", 5: "4.3"} {
		if p, ok := ProfileForVersion(v); !ok || p.Name != want {
			t.Errorf("ProfileForVersion(%d) = %s, %v", v, p.Name, ok)
		}
	}
	if _, ok := ProfileForVersion(6); ok {
		t.Error("VERSION 6 is a tuple profile, not a single version")
	}
	if p, ok := ProfileForVersions(Profile44.Versions); !ok || p.Name != "4.4" {
		t.Error("ProfileForVersions(4.4)")
	}
	if Newest().Name != "4.4" {
		t.Error("Newest")
	}
}
