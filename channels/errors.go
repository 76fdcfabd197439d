package channels

import (
	"errors"
	"io/fs"
	"strings"
)

// Sentinels for the ways creating, joining or inspecting a channel file
// can fail. Every error this package returns for a file is an *Error whose
// Err is one of these, so errors.Is(err, ErrNotExist) and the like work.
var (
	ErrNotExist       = errors.New("file does not exist")
	ErrNotInitialised = errors.New("channel not initialised (magic is 0)")
	ErrCorrupt        = errors.New("not a channel file (wrong magic)")
	ErrCapacity       = errors.New("capacity mismatch")
	ErrFileSize       = errors.New("file size mismatch")
	ErrPermission     = errors.New("permission denied")
	ErrHugePages      = errors.New("not enough free huge pages")
	ErrHugetlbfs      = errors.New("hugetlbfs not mounted")
	ErrGroup          = errors.New("unknown group")
	ErrInvalid        = errors.New("invalid channel spec")
)

// Error describes a failure on one channel file: which file, what was
// being done, what went wrong (a sentinel), details, the underlying system
// error if any, and what the operator can do about it.
type Error struct {
	Path   string // the channel file (or directory) concerned
	Op     string // "create", "join", "inspect", "remove"
	Err    error  // one of the sentinels above
	Detail string // specifics, e.g. "file has capacity 8, channel expects 32768"
	Remedy string // what to do about it
	Cause  error  // the system error behind it, if any
}

// Error formats the error as one line:
//
//	channels: join /dev/shm/tpu_to_qos: capacity mismatch: file has 8, expected 32768 (remedy: ...)
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("channels: ")
	b.WriteString(e.Op)
	b.WriteByte(' ')
	b.WriteString(e.Path)
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Cause != nil {
		b.WriteString(" (")
		var pe *fs.PathError
		if errors.As(e.Cause, &pe) {
			// The path is already said: keep the operation and the errno.
			b.WriteString(pe.Op)
			b.WriteString(": ")
			b.WriteString(pe.Err.Error())
		} else {
			b.WriteString(e.Cause.Error())
		}
		b.WriteByte(')')
	}
	if e.Remedy != "" {
		b.WriteString("; ")
		b.WriteString(e.Remedy)
	}
	return b.String()
}

// Unwrap returns the sentinel and, if present, the system error, so that
// errors.Is matches both (e.g. ErrPermission and fs.ErrPermission).
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// Remedies, shared by the places that raise each error.
const (
	remedyNotExist      = "start the producer or run `qos-cli init` with the same --prefix/--shm-dir/--use-huge-pages options"
	remedyNotInit       = "the producer has not initialised it yet: retry once it runs, or run `qos-cli init`"
	remedyCorrupt       = "another program uses this name or the file is damaged: stop its users, `qos-cli remove` it and `qos-cli init` again"
	remedyRecreate      = "the two sides disagree on the layout: stop both, `qos-cli remove` the channel and `qos-cli init` again"
	remedyPermission    = "run as the file's owner or a member of its group (create channels with `qos-cli init --group GROUP` so validator and qos can share them), or fix the mode with chmod/chgrp"
	remedyGroup         = "name an existing group (see /etc/group) or a numeric group id"
	remedyInvalidPrefix = "use a prefix and channel name without '/'"
)
