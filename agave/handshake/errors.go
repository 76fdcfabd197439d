package handshake

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/solqos/qos/agave/bindings"
)

// Sentinels, wrapped with the socket path and what to do.
var (
	// ErrSocketMissing: no socket file, or nothing listening on it.
	ErrSocketMissing = errors.New("agave scheduler-bindings socket not available")
	// ErrPermission: the socket exists but this user may not connect.
	ErrPermission = errors.New("permission denied on the agave scheduler-bindings socket")
	// ErrTimeout: the peer did not complete the handshake in time.
	ErrTimeout = errors.New("agave handshake timed out")
	// ErrProtocol: the peer sent something the protocol does not allow
	// (unknown reply byte, no or truncated fds, a wrong fd count).
	ErrProtocol = errors.New("agave handshake protocol violation")
)

// RefusalError is a logon the server refused (reply byte 0x02). Reason is the
// server's text verbatim, e.g. "Version; server=3; client=4" or
// "Worker count; count=0". For a version refusal VersionRefused is true and
// ServerVersion (and for the 4.4 format ServerVersions) name what the server
// speaks, so a caller can pick the matching profile (ProfileFor).
type RefusalError struct {
	Socket         string
	Reason         string
	VersionRefused bool
	ServerVersion  uint64
	ServerVersions bindings.ProtocolVersions // zero unless the server uses the 4-version prefix
	ClientVersion  uint64
}

func (e *RefusalError) Error() string {
	var b strings.Builder
	b.WriteString("agave scheduler-bindings server")
	if e.Socket != "" {
		b.WriteString(" at ")
		b.WriteString(e.Socket)
	}
	b.WriteString(" refused the logon: ")
	b.WriteString(e.Reason)
	if e.VersionRefused {
		if p, ok := e.ProfileFor(); ok {
			fmt.Fprintf(&b, " (the validator speaks profile %s, Agave %s: use --agave-abi %s or auto)", p.Name, p.Agave, p.Name)
		} else if e.ServerVersions != (bindings.ProtocolVersions{}) {
			fmt.Fprintf(&b, " (the validator speaks %s, which no profile of this build matches)", e.ServerVersions)
		} else {
			fmt.Fprintf(&b, " (the validator speaks handshake version %d, which no profile of this build supports)", e.ServerVersion)
		}
	}
	return b.String()
}

// ProfileFor returns the profile matching the server's version in a version
// refusal.
func (e *RefusalError) ProfileFor() (bindings.Profile, bool) {
	if !e.VersionRefused {
		return bindings.Profile{}, false
	}
	if e.ServerVersions != (bindings.ProtocolVersions{}) {
		return bindings.ProfileForVersions(e.ServerVersions)
	}
	return bindings.ProfileForVersion(e.ServerVersion)
}

// parseRefusal fills the version fields of a refusal from Agave's reason
// text: "Version; server=N; client=M" (VERSION 3–5) or
// "Version; server=(handshake=6, scheduler-bindings=6, shaq=S, rts-alloc=R); client=(…)".
func parseRefusal(socket, reason string) *RefusalError {
	e := &RefusalError{Socket: socket, Reason: reason}
	rest, ok := strings.CutPrefix(reason, "Version; server=")
	if !ok {
		return e
	}
	if strings.HasPrefix(rest, "(") {
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return e
		}
		v, ok := parseVersions(rest[1:end])
		if !ok {
			return e
		}
		e.VersionRefused, e.ServerVersions, e.ServerVersion = true, v, v.Handshake
		return e
	}
	num, _, _ := strings.Cut(rest, ";")
	v, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return e
	}
	e.VersionRefused, e.ServerVersion = true, v
	return e
}

// parseVersions reads "handshake=6, scheduler-bindings=6, shaq=196608, rts-alloc=262144".
func parseVersions(s string) (bindings.ProtocolVersions, bool) {
	var v bindings.ProtocolVersions
	seen := 0
	for _, kv := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return v, false
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return v, false
		}
		switch k {
		case "handshake":
			v.Handshake = n
		case "scheduler-bindings":
			v.SchedulerBindings = n
		case "shaq":
			v.Shaq = n
		case "rts-alloc":
			v.RtsAlloc = n
		default:
			return v, false
		}
		seen++
	}
	return v, seen == 4
}
