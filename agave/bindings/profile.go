package bindings

import (
	"fmt"
	"strings"
)

// ABI names one family of message layouts (see the package doc).
type ABI uint8

// The message layout families. The zero ABI is invalid.
const (
	ABI40 ABI = iota + 1 // Agave 4.0: in-tree bindings, 48-byte Progress.
	ABI41                // Agave 4.1–4.3: bindings 5.0.0, 80-byte Progress.
	ABI44                // Agave 4.4: bindings 6.0.0, split check/execution messages.
)

func (a ABI) String() string {
	switch a {
	case ABI40:
		return "ABI40"
	case ABI41:
		return "ABI41"
	case ABI44:
		return "ABI44"
	}
	return fmt.Sprintf("ABI(%d)", uint8(a))
}

// Valid reports whether a is one of the known layout families.
func (a ABI) Valid() bool { return a >= ABI40 && a <= ABI44 }

// HandshakeFormat says how the logon message starts.
type HandshakeFormat uint8

const (
	// HandshakeVersion: a single u64 VERSION, then ClientLogon
	// (Agave scheduling-utils/src/handshake/shared.rs, VERSION 3, 4 and 5).
	HandshakeVersion HandshakeFormat = iota + 1
	// HandshakeTuple: the 32-byte ProtocolVersions {handshake, scheduler_bindings,
	// shaq, rts_alloc}, all of which must match (agave-sdk scheduler-handshake 6).
	HandshakeTuple
)

// ShaqFormat names the shaq queue release a profile uses; session maps it to
// the channels/shaq format.
type ShaqFormat uint8

const (
	ShaqV1_0_2 ShaqFormat = iota + 1 // shaq 1.0.2: 192-byte header with version byte.
	ShaqV3                           // shaq 3.0.0: "shaqspsc" magic, version 0x0002_0000.
	ShaqV4                           // shaq 4.0.0: version 0x0003_0000, futex waiters word.
)

func (f ShaqFormat) String() string {
	switch f {
	case ShaqV1_0_2:
		return "shaq-1.0.2"
	case ShaqV3:
		return "shaq-3.0.0"
	case ShaqV4:
		return "shaq-4.0.0"
	}
	return fmt.Sprintf("shaq(%d)", uint8(f))
}

// RtsAllocFormat names the rts-alloc release line a profile uses.
type RtsAllocFormat uint8

const (
	RtsAllocV2 RtsAllocFormat = iota + 1 // rts-alloc 2.0.0: explicit worker slot on join.
	RtsAllocV4                           // rts-alloc 3.x/4.x: join claims the first free slot.
	RtsAllocV5                           // rts-alloc 5.x: per-worker remote free head.
)

func (f RtsAllocFormat) String() string {
	switch f {
	case RtsAllocV2:
		return "rts-alloc-2"
	case RtsAllocV4:
		return "rts-alloc-4"
	case RtsAllocV5:
		return "rts-alloc-5"
	}
	return fmt.Sprintf("rts-alloc(%d)", uint8(f))
}

// ProtocolVersions is the 32-byte prefix of a HandshakeTuple logon.
type ProtocolVersions struct {
	Handshake         uint64 // @0
	SchedulerBindings uint64 // @8
	Shaq              uint64 // @16
	RtsAlloc          uint64 // @24
}

// String formats v the way Agave's Display does
// ("handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144").
func (v ProtocolVersions) String() string {
	return fmt.Sprintf("handshake=%d, scheduler-bindings=%d, shaq=%d, rts-alloc=%d",
		v.Handshake, v.SchedulerBindings, v.Shaq, v.RtsAlloc)
}

// Profile pins everything that differs between Agave release lines: the
// logon format, the message layouts, the queue and allocator formats and the
// set of shared-memory objects the validator hands over.
type Profile struct {
	// Name is what --agave-abi accepts ("4.0", "4.1", "4.3", "4.4").
	Name string
	// Agave is the release range the profile covers, for messages.
	Agave string
	ABI   ABI
	// Handshake says whether the logon starts with Version or Versions.
	Handshake HandshakeFormat
	// Version is the handshake VERSION (3, 4, 5); for HandshakeTuple it is
	// Versions.Handshake.
	Version  uint64
	Versions ProtocolVersions
	// LogonSize is the size of ClientLogon after the prefix: 64, 80 or 88.
	LogonSize int
	// CheckQueues: the validator creates one shared MPMC pack_to_check_worker /
	// check_worker_to_pack pair (fds 3 and 4).
	CheckQueues bool
	// CheckWorkerCount: the logon carries check_worker_count (1..64), and the
	// allocator has that many more slots.
	CheckWorkerCount bool
	Shaq             ShaqFormat
	RtsAlloc         RtsAllocFormat
	// ExplicitSlots: client allocator handle k joins slot 1+worker_count+k
	// (rts-alloc 2.0); otherwise each join claims the first free slot.
	ExplicitSlots bool
	// Source cites where the profile was read.
	Source string
}

// GlobalFds is the number of fds before the per-worker pairs: allocator,
// tpu_to_pack, progress_tracker, and with CheckQueues the two check queues.
func (p Profile) GlobalFds() int {
	if p.CheckQueues {
		return 5
	}
	return 3
}

// FdCount is the number of fds a successful logon with workerCount workers
// carries.
func (p Profile) FdCount(workerCount int) int { return p.GlobalFds() + 2*workerCount }

// PrefixSize is the size of the version prefix of the logon (8 or 32).
func (p Profile) PrefixSize() int {
	if p.Handshake == HandshakeTuple {
		return 32
	}
	return 8
}

// IsAuto reports whether p is the Auto placeholder rather than a real profile.
func (p Profile) IsAuto() bool { return p.Name == AutoName && !p.ABI.Valid() }

// String is the profile's name.
func (p Profile) String() string { return p.Name }

// AutoName selects automatic profile choice: log on with the newest profile
// and, on a version refusal, retry with the one the validator named.
const AutoName = "auto"

// Auto is the placeholder returned by ParseProfile("auto").
var Auto = Profile{Name: AutoName}

// The supported profiles, oldest first.
var (
	// Profile40: Agave 4.0.x. Read from agave v4.0.0-rc.0 (8e3bcf0c)
	// scheduling-utils/src/handshake/shared.rs (VERSION = 3) and Cargo.lock
	// (shaq 1.0.2, rts-alloc 2.0.0).
	Profile40 = Profile{
		Name: "4.0", Agave: "4.0.x", ABI: ABI40,
		Handshake: HandshakeVersion, Version: 3, LogonSize: 64,
		Shaq: ShaqV1_0_2, RtsAlloc: RtsAllocV2, ExplicitSlots: true,
		Source: "agave v4.0.0-rc.0 8e3bcf0c scheduling-utils/src/handshake/shared.rs, scheduler-bindings/src/lib.rs",
	}
	// Profile41: Agave 4.1.x and 4.2.x. VERSION 4 from agave #12265
	// (daa63829), and still 4 in docs.rs agave-scheduling-utils 4.2.0-beta.2
	// and 4.2.2 src/handshake/shared.rs (same 64-byte ClientLogon);
	// agave-scheduling-utils 4.2.0 depends on shaq ^3.0.0 and rts-alloc
	// ^4.0.0; bindings 5.0.0 (agave-sdk 9a295034).
	Profile41 = Profile{
		Name: "4.1", Agave: "4.1.x–4.2.x", ABI: ABI41,
		Handshake: HandshakeVersion, Version: 4, LogonSize: 64,
		Shaq: ShaqV3, RtsAlloc: RtsAllocV4,
		Source: "agave #12265 daa63829 scheduling-utils/src/handshake/shared.rs; agave-sdk 9a295034 scheduler-bindings/src/lib.rs",
	}
	// Profile43: handshake VERSION 5, read from agave master 091bee17
	// scheduling-utils/src/handshake/{shared,server}.rs: an 80-byte ClientLogon
	// (the 4.0 fields, then pack_to_check_worker_capacity @64 and
	// check_worker_to_pack_capacity @72), fds [allocator, tpu_to_pack,
	// progress_tracker, pack_to_check_worker, check_worker_to_pack, then per
	// worker pack_to_worker, worker_to_pack], check queues shaq::mpmc carrying
	// the bindings 5.0.0 PackToWorker/WorkerToPack messages, workers joining
	// the allocator by claim. Which release tags carry VERSION 5 is not
	// verified; 4.3.0-beta.0 depends on bindings ^5.0.0 (docs.rs),
	// 4.3.0-alpha.3's bridge still uses the combined PackToWorker /
	// tagged WorkerToPack messages (docs.rs src/bridge/test.rs), and shaq
	// 3.0.0 already has mpmc (anza-xyz/shaq v3.0.0 src/mpmc.rs).
	Profile43 = Profile{
		Name: "4.3", Agave: "4.3.x (handshake VERSION 5; release mapping unverified)", ABI: ABI41,
		Handshake: HandshakeVersion, Version: 5, LogonSize: 80, CheckQueues: true,
		Shaq: ShaqV3, RtsAlloc: RtsAllocV4,
		Source: "agave 091bee17 scheduling-utils/src/handshake/{shared,server}.rs",
	}
	// Profile44: Agave 4.4 (master 0004f81e = 4.4.0-alpha.2) with agave-sdk
	// scheduler-handshake 6 (shared.rs 1c2a26aa, server.rs 1d705b20),
	// scheduler-bindings 6.0.0 (711c4dfc), shaq 4.0.0 (shaq::VERSION =
	// 0x0003_0000) and rts-alloc 5.1 (rts_alloc::VERSION = 0x0004_0000).
	Profile44 = Profile{
		Name: "4.4", Agave: "4.4.x", ABI: ABI44,
		Handshake: HandshakeTuple, Version: 6,
		Versions:  ProtocolVersions{Handshake: 6, SchedulerBindings: 6, Shaq: 0x0003_0000, RtsAlloc: 0x0004_0000},
		LogonSize: 88, CheckQueues: true, CheckWorkerCount: true,
		Shaq: ShaqV4, RtsAlloc: RtsAllocV5,
		Source: "agave-sdk scheduler-handshake 1c2a26aa shared.rs, 1d705b20 server.rs; scheduler-bindings 711c4dfc",
	}
)

// Profiles returns the supported profiles, oldest first.
func Profiles() []Profile { return []Profile{Profile40, Profile41, Profile43, Profile44} }

// Newest is the profile Auto logs on with first.
func Newest() Profile { return Profile44 }

// ProfileByName returns the profile called name ("4.0", "4.1", "4.3", "4.4";
// "4.2" is an alias of "4.1").
func ProfileByName(name string) (Profile, bool) {
	if name == "4.2" {
		name = "4.1"
	}
	for _, p := range Profiles() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// ParseProfile parses an --agave-abi value: a profile name or "auto".
func ParseProfile(s string) (Profile, error) {
	s = strings.TrimSpace(s)
	if s == AutoName {
		return Auto, nil
	}
	if p, ok := ProfileByName(s); ok {
		return p, nil
	}
	names := make([]string, 0, 5)
	for _, p := range Profiles() {
		names = append(names, p.Name)
	}
	names = append(names, AutoName)
	return Profile{}, fmt.Errorf("unknown Agave ABI profile %q: want one of %s", s, strings.Join(names, ", "))
}

// ProfileForVersion returns the HandshakeVersion profile whose VERSION is v
// (what a "Version; server=N; client=M" refusal names).
func ProfileForVersion(v uint64) (Profile, bool) {
	for _, p := range Profiles() {
		if p.Handshake == HandshakeVersion && p.Version == v {
			return p, true
		}
	}
	return Profile{}, false
}

// ProfileForVersions returns the HandshakeTuple profile whose versions are v.
func ProfileForVersions(v ProtocolVersions) (Profile, bool) {
	for _, p := range Profiles() {
		if p.Handshake == HandshakeTuple && p.Versions == v {
			return p, true
		}
	}
	return Profile{}, false
}
