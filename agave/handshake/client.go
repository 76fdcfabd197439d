package handshake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/solqos/qos/agave/bindings"
)

// Dial logs on to the scheduler-bindings server at socket with profile p and
// returns the received files in protocol order. The caller owns them (map,
// then Close). The whole exchange is bounded by ctx's deadline, or
// DefaultTimeout when it has none. Errors: ErrSocketMissing, ErrPermission,
// ErrTimeout, ErrProtocol (all wrapped with the socket path), or a
// *RefusalError carrying the server's reason verbatim.
func Dial(ctx context.Context, socket string, p bindings.Profile, l Logon) (*Fds, error) {
	if !p.ABI.Valid() {
		return nil, fmt.Errorf("agave handshake with %s: profile %q is not a concrete ABI profile (resolve \"auto\" first)", socket, p.Name)
	}
	var msg [MessageSize]byte
	if err := EncodeLogon(p, l, msg[:]); err != nil {
		return nil, fmt.Errorf("agave handshake with %s: %w", socket, err)
	}
	want := p.FdCount(int(l.WorkerCount))
	if l.WorkerCount > MaxWorkers {
		want = -1 // the server will refuse; never expect fds
	}

	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, dialError(socket, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("agave handshake with %s: %w", socket, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := conn.Write(msg[:]); err != nil {
		return nil, ioError(ctx, socket, "sending the logon", err)
	}

	var reply [MessageSize]byte
	oob := make([]byte, syscall.CmsgSpace(maxFds*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(reply[:], oob)
	// Take ownership of any fds first, so every error path closes them.
	raw, perr := parseRights(oob[:oobn])
	closeRaw := func() {
		for _, fd := range raw {
			_ = syscall.Close(fd)
		}
	}
	if err != nil && n <= 0 { // n is -1 on some errors
		closeRaw()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("agave handshake with %s: server closed the connection without a reply: %w", socket, ErrProtocol)
		}
		return nil, ioError(ctx, socket, "waiting for the logon reply", err)
	}
	if n <= 0 {
		closeRaw()
		return nil, fmt.Errorf("agave handshake with %s: server closed the connection without a reply: %w", socket, ErrProtocol)
	}
	switch reply[0] {
	case logonSuccess:
		if perr != nil || flags&syscall.MSG_CTRUNC != 0 {
			closeRaw()
			return nil, fmt.Errorf("agave handshake with %s: success reply with unreadable or truncated fds (%v): %w", socket, perr, ErrProtocol)
		}
		if len(raw) != want {
			closeRaw()
			return nil, fmt.Errorf("agave handshake with %s: success reply carries %d fds, profile %s with %d workers expects %d (is the validator another Agave release? try --agave-abi auto): %w",
				socket, len(raw), p.Name, l.WorkerCount, want, ErrProtocol)
		}
		return fdsFromRaw(p, raw), nil
	case logonFailure:
		closeRaw()
		got := reply[:n]
		if len(got) < 2 {
			// The length byte may trail the failure byte.
			var lb [1]byte
			if _, err := io.ReadFull(conn, lb[:]); err != nil {
				return nil, fmt.Errorf("agave handshake with %s: refusal without a reason: %w", socket, ErrProtocol)
			}
			got = append(got, lb[0])
		}
		need := 2 + int(got[1])
		for len(got) < need {
			m, err := conn.Read(reply[len(got):need])
			got = reply[:len(got)+m]
			if err != nil {
				break // surface what arrived
			}
		}
		if len(got) > need {
			got = got[:need]
		}
		return nil, parseRefusal(socket, string(got[2:]))
	default:
		closeRaw()
		return nil, fmt.Errorf("agave handshake with %s: unknown reply byte %#02x: %w", socket, reply[0], ErrProtocol)
	}
}

// parseRights returns every fd passed with SCM_RIGHTS in oob.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	var firstErr error
	for i := range msgs {
		got, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		fds = append(fds, got...)
	}
	return fds, firstErr
}

// dialError turns a connect failure into advice for an operator.
func dialError(socket string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("agave scheduler-bindings socket %s does not exist: is agave-validator running with --enable-scheduler-bindings, and is this its --ledger directory (the socket is <ledger>/scheduler_bindings.ipc)? %w", socket, ErrSocketMissing)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listens on %s (a stale socket): is agave-validator running with --enable-scheduler-bindings? %w", socket, ErrSocketMissing)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("cannot connect to %s: run qos as the validator's user or grant it write access to the socket and search access to the ledger directory: %w", socket, ErrPermission)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("connecting to %s: %w", socket, ErrTimeout)
	}
	return fmt.Errorf("connecting to agave scheduler-bindings socket %s: %w", socket, err)
}

func ioError(ctx context.Context, socket, doing string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("agave handshake with %s: %s: %w", socket, doing, ctx.Err())
		}
		return fmt.Errorf("agave handshake with %s: %s: no answer in time: %w", socket, doing, ErrTimeout)
	}
	return fmt.Errorf("agave handshake with %s: %s: %w", socket, doing, err)
}

// DialAuto logs on with the newest profile and, when the server refuses with
// a version this build knows ("Version; server=N; …"), logs on again with
// the matching profile. It returns the files and the profile that worked.
// log may be nil.
func DialAuto(ctx context.Context, socket string, l Logon, log *slog.Logger) (*Fds, bindings.Profile, error) {
	if log == nil {
		log = slog.Default()
	}
	p := bindings.Newest()
	fds, err := Dial(ctx, socket, p, l)
	var r *RefusalError
	if err == nil || !errors.As(err, &r) || !r.VersionRefused {
		return fds, p, err
	}
	next, ok := r.ProfileFor()
	if !ok || next.Name == p.Name {
		return nil, p, err
	}
	log.Info("agave refused the newest ABI profile; retrying with the validator's",
		"socket", socket, "tried", p.Name, "reason", r.Reason, "profile", next.Name, "agave", next.Agave)
	fds, err = Dial(ctx, socket, next, l)
	return fds, next, err
}
