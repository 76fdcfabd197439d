package handshake

import (
	"errors"
	"fmt"
	"os"

	"github.com/solqos/qos/agave/bindings"
)

// Fds are the shared-memory files of one session, in protocol order.
type Fds struct {
	Allocator *os.File
	TpuToPack *os.File
	Progress  *os.File
	// PackToCheck and CheckToPack are the shared MPMC check queues
	// (profiles with CheckQueues); nil otherwise.
	PackToCheck *os.File
	CheckToPack *os.File
	Workers     []WorkerFds
}

// WorkerFds are one worker's queue pair.
type WorkerFds struct {
	PackToWorker *os.File
	WorkerToPack *os.File
}

// Files returns the files in wire order for p (what the server sends).
func (f *Fds) Files(p bindings.Profile) []*os.File {
	out := make([]*os.File, 0, p.FdCount(len(f.Workers)))
	out = append(out, f.Allocator, f.TpuToPack, f.Progress)
	if p.CheckQueues {
		out = append(out, f.PackToCheck, f.CheckToPack)
	}
	for _, w := range f.Workers {
		out = append(out, w.PackToWorker, w.WorkerToPack)
	}
	return out
}

// Close closes every file (nil entries are skipped).
func (f *Fds) Close() error {
	if f == nil {
		return nil
	}
	var errs []error
	closeOne := func(x **os.File) {
		if *x != nil {
			if err := (*x).Close(); err != nil {
				errs = append(errs, err)
			}
			*x = nil
		}
	}
	closeOne(&f.Allocator)
	closeOne(&f.TpuToPack)
	closeOne(&f.Progress)
	closeOne(&f.PackToCheck)
	closeOne(&f.CheckToPack)
	for i := range f.Workers {
		closeOne(&f.Workers[i].PackToWorker)
		closeOne(&f.Workers[i].WorkerToPack)
	}
	return errors.Join(errs...)
}

// fdsFromRaw wraps raw received descriptors in wire order. Names say what
// each one is, for error messages.
func fdsFromRaw(p bindings.Profile, raw []int) *Fds {
	name := func(s string) string { return "agave:" + s }
	f := &Fds{
		Allocator: os.NewFile(uintptr(raw[0]), name("allocator")),
		TpuToPack: os.NewFile(uintptr(raw[1]), name("tpu_to_pack")),
		Progress:  os.NewFile(uintptr(raw[2]), name("progress_tracker")),
	}
	i := 3
	if p.CheckQueues {
		f.PackToCheck = os.NewFile(uintptr(raw[3]), name("pack_to_check_worker"))
		f.CheckToPack = os.NewFile(uintptr(raw[4]), name("check_worker_to_pack"))
		i = 5
	}
	for w := 0; i+1 < len(raw); w, i = w+1, i+2 {
		f.Workers = append(f.Workers, WorkerFds{
			PackToWorker: os.NewFile(uintptr(raw[i]), name(fmt.Sprintf("pack_to_worker[%d]", w))),
			WorkerToPack: os.NewFile(uintptr(raw[i+1]), name(fmt.Sprintf("worker_to_pack[%d]", w))),
		})
	}
	return f
}
