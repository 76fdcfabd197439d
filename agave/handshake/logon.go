package handshake

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/solqos/qos/agave/bindings"
)

var le = binary.LittleEndian

// Protocol constants shared by client and server.
const (
	MessageSize         = 1024 // the logon is exactly this long
	MaxWorkers          = 64
	MaxAllocatorHandles = 128
	// ServerReadTimeout is how long Agave waits for the whole logon.
	ServerReadTimeout = time.Second
	// DefaultTimeout bounds a Dial whose context has no deadline: the server
	// creates and initialises every shared-memory object before it answers.
	DefaultTimeout = 10 * time.Second

	logonSuccess = 0x01
	logonFailure = 0x02
	maxFds       = 5 + 2*MaxWorkers
)

// Logon is the client's request. Capacities are minimum message counts; the
// server rounds every queue up to the largest power of two fitting its
// page-rounded file. Fields a profile lacks are not sent (and decode as 0).
type Logon struct {
	WorkerCount      uint64 // 1..64 execution (4.0–4.3: all) workers
	CheckWorkerCount uint64 // 4.4 only: 1..64 check workers
	AllocatorSize    uint64 // minimum allocator file size in bytes
	AllocatorHandles uint64 // 1..128 allocator handles for the client

	TpuToPackCapacity    uint64
	ProgressCapacity     uint64
	PackToWorkerCapacity uint64
	WorkerToPackCapacity uint64
	PackToCheckCapacity  uint64 // 4.3, 4.4
	CheckToPackCapacity  uint64 // 4.3, 4.4
	Flags                uint64 // logon_flags: none defined (u16 before 4.4)
}

// EncodeLogon writes the complete 1024-byte logon message of p into buf.
func EncodeLogon(p bindings.Profile, l Logon, buf []byte) error {
	if len(buf) < MessageSize {
		return fmt.Errorf("logon buffer of %d bytes, need %d", len(buf), MessageSize)
	}
	buf = buf[:MessageSize]
	clear(buf)
	switch p.Handshake {
	case bindings.HandshakeVersion:
		le.PutUint64(buf[0:8], p.Version)
		b := buf[8:]
		le.PutUint64(b[0:], l.WorkerCount)
		le.PutUint64(b[8:], l.AllocatorSize)
		le.PutUint64(b[16:], l.AllocatorHandles)
		le.PutUint64(b[24:], l.TpuToPackCapacity)
		le.PutUint64(b[32:], l.ProgressCapacity)
		le.PutUint64(b[40:], l.PackToWorkerCapacity)
		le.PutUint64(b[48:], l.WorkerToPackCapacity)
		if l.Flags > 0xFFFF {
			return fmt.Errorf("logon flags %#x do not fit the u16 of handshake VERSION %d", l.Flags, p.Version)
		}
		le.PutUint16(b[56:], uint16(l.Flags))
		if p.LogonSize >= 80 {
			le.PutUint64(b[64:], l.PackToCheckCapacity)
			le.PutUint64(b[72:], l.CheckToPackCapacity)
		}
	case bindings.HandshakeTuple:
		v := p.Versions
		le.PutUint64(buf[0:], v.Handshake)
		le.PutUint64(buf[8:], v.SchedulerBindings)
		le.PutUint64(buf[16:], v.Shaq)
		le.PutUint64(buf[24:], v.RtsAlloc)
		b := buf[32:]
		le.PutUint64(b[0:], l.WorkerCount)
		le.PutUint64(b[8:], l.CheckWorkerCount)
		le.PutUint64(b[16:], l.AllocatorSize)
		le.PutUint64(b[24:], l.AllocatorHandles)
		le.PutUint64(b[32:], l.TpuToPackCapacity)
		le.PutUint64(b[40:], l.ProgressCapacity)
		le.PutUint64(b[48:], l.PackToWorkerCapacity)
		le.PutUint64(b[56:], l.WorkerToPackCapacity)
		le.PutUint64(b[64:], l.PackToCheckCapacity)
		le.PutUint64(b[72:], l.CheckToPackCapacity)
		le.PutUint64(b[80:], l.Flags)
	default:
		return fmt.Errorf("profile %q has no handshake format", p.Name)
	}
	return nil
}

// DecodeLogon checks a 1024-byte logon against the server's profile p the way
// Agave does (exact version, then counts) and returns it. A refusal is a
// *RefusalError whose Reason is the text Agave would send.
func DecodeLogon(p bindings.Profile, buf []byte) (Logon, error) {
	var l Logon
	if len(buf) < MessageSize {
		return l, &RefusalError{Reason: "Close during handshake"}
	}
	switch p.Handshake {
	case bindings.HandshakeVersion:
		if v := le.Uint64(buf[0:8]); v != p.Version {
			return l, &RefusalError{
				Reason:        fmt.Sprintf("Version; server=%d; client=%d", p.Version, v),
				ServerVersion: p.Version, ClientVersion: v,
			}
		}
		b := buf[8:]
		l.WorkerCount = le.Uint64(b[0:])
		l.AllocatorSize = le.Uint64(b[8:])
		l.AllocatorHandles = le.Uint64(b[16:])
		l.TpuToPackCapacity = le.Uint64(b[24:])
		l.ProgressCapacity = le.Uint64(b[32:])
		l.PackToWorkerCapacity = le.Uint64(b[40:])
		l.WorkerToPackCapacity = le.Uint64(b[48:])
		l.Flags = uint64(le.Uint16(b[56:]))
		if p.LogonSize >= 80 {
			l.PackToCheckCapacity = le.Uint64(b[64:])
			l.CheckToPackCapacity = le.Uint64(b[72:])
		}
	case bindings.HandshakeTuple:
		c := bindings.ProtocolVersions{
			Handshake: le.Uint64(buf[0:]), SchedulerBindings: le.Uint64(buf[8:]),
			Shaq: le.Uint64(buf[16:]), RtsAlloc: le.Uint64(buf[24:]),
		}
		if c != p.Versions {
			return l, &RefusalError{
				Reason:         fmt.Sprintf("Version; server=(%s); client=(%s)", p.Versions, c),
				ServerVersion:  p.Versions.Handshake,
				ServerVersions: p.Versions, ClientVersion: c.Handshake,
			}
		}
		b := buf[32:]
		l.WorkerCount = le.Uint64(b[0:])
		l.CheckWorkerCount = le.Uint64(b[8:])
		l.AllocatorSize = le.Uint64(b[16:])
		l.AllocatorHandles = le.Uint64(b[24:])
		l.TpuToPackCapacity = le.Uint64(b[32:])
		l.ProgressCapacity = le.Uint64(b[40:])
		l.PackToWorkerCapacity = le.Uint64(b[48:])
		l.WorkerToPackCapacity = le.Uint64(b[56:])
		l.PackToCheckCapacity = le.Uint64(b[64:])
		l.CheckToPackCapacity = le.Uint64(b[72:])
		l.Flags = le.Uint64(b[80:])
	default:
		return l, fmt.Errorf("profile %q has no handshake format", p.Name)
	}
	return l, l.Validate(p)
}

// Validate applies the server's count limits, returning a *RefusalError with
// Agave's reason text.
func (l Logon) Validate(p bindings.Profile) error {
	if l.WorkerCount < 1 || l.WorkerCount > MaxWorkers {
		return &RefusalError{Reason: fmt.Sprintf("Worker count; count=%d", l.WorkerCount)}
	}
	if p.CheckWorkerCount && (l.CheckWorkerCount < 1 || l.CheckWorkerCount > MaxWorkers) {
		return &RefusalError{Reason: fmt.Sprintf("Check worker count; count=%d", l.CheckWorkerCount)}
	}
	if l.AllocatorHandles < 1 || l.AllocatorHandles > MaxAllocatorHandles {
		return &RefusalError{Reason: fmt.Sprintf("Allocator handles; count=%d", l.AllocatorHandles)}
	}
	return nil
}
