// Package session is the client side of an Agave external-scheduler session:
// it logs on over the scheduler-bindings socket (agave/handshake), maps
// every shared-memory file it receives (channels/shm), joins the rts-alloc
// allocator handles and the shaq queues with the formats of the session's
// ABI profile, and closes the descriptors once everything is mapped.
//
// What is joined, per profile (bindings.Profile):
//
//	allocator          AllocatorHandles rts-alloc handles: explicit slots
//	                   1+worker_count+k on 4.0 (rts-alloc 2.0), claimed slots after
//	tpu_to_pack        shaq SPSC consumer of TpuToPack (40 B)
//	progress_tracker   shaq SPSC consumer of Progress (48/80/96 B)
//	pack_to_check_worker, check_worker_to_pack
//	                   4.3 (shaq 3.0.0) and 4.4 (shaq 4.0.0): MPMC producer of
//	                   PackToWorker (4.3, 32 B) or PackToCheckWorker (4.4, 24 B) /
//	                   consumer of WorkerToPack (40 B)
//	pack_to_worker[i]  shaq SPSC producer of PackToWorker (32 B)
//	worker_to_pack[i]  shaq SPSC consumer of WorkerToPack (40 B)
//
// A Session is not safe for concurrent use as a whole; each queue end and
// allocator handle may be driven by one goroutine.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
)

// Session is one logged-on scheduling session.
type Session struct {
	Socket  string
	Profile bindings.Profile
	Logon   handshake.Logon

	// Allocators are the client's allocator handles over one mapping
	// (offsets in messages count from the start of Memory()).
	Allocators []*rtsalloc.Allocator
	TpuToPack  *shaq.Consumer
	Progress   *shaq.Consumer
	// PackToCheck and CheckToPack are nil unless Profile.CheckQueues.
	PackToCheck *shaq.MPMCProducer
	CheckToPack *shaq.MPMCConsumer
	Workers     []Worker

	allocator *shm.Region
	regions   []*shm.Region
}

// Worker is the queue pair of one Agave worker.
type Worker struct {
	PackToWorker *shaq.Producer
	WorkerToPack *shaq.Consumer
}

// Memory is the allocator mapping: the bytes every offset in a message
// points into (for the bindings region helpers).
func (s *Session) Memory() []byte { return s.allocator.Bytes() }

// Huge reports whether the allocator is backed by 2 MiB pages.
func (s *Session) Huge() bool { return s.allocator.Huge() }

// ShaqFormat maps a profile's queue release to channels/shaq's format.
func ShaqFormat(f bindings.ShaqFormat) (shaq.Format, error) {
	switch f {
	case bindings.ShaqV1_0_2:
		return shaq.V1_0_2, nil
	case bindings.ShaqV3:
		return shaq.V3, nil
	case bindings.ShaqV4:
		return shaq.V4, nil
	}
	return 0, fmt.Errorf("no shaq format for %v", f)
}

// RtsAllocFormat maps a profile's allocator line to channels/rtsalloc's format.
func RtsAllocFormat(f bindings.RtsAllocFormat) (rtsalloc.Format, error) {
	switch f {
	case bindings.RtsAllocV2:
		return rtsalloc.V2, nil
	case bindings.RtsAllocV4:
		return rtsalloc.V4, nil
	case bindings.RtsAllocV5:
		return rtsalloc.V5, nil
	}
	return 0, fmt.Errorf("no rts-alloc format for %v", f)
}

// ErrUnsupported: the profile needs a shared-memory format channels/ does
// not implement yet.
var ErrUnsupported = errors.New("agave session: profile not supported by this build's shared-memory code")

// Connect logs on at socket with profile p (or bindings.Auto: newest first,
// then the profile a version refusal names), maps and joins everything, and
// closes the received descriptors. log may be nil. On error nothing stays
// mapped or open. A successful logon makes Agave stop its own scheduler; if
// joining fails after it, Agave returns to its internal scheduler only when
// the undrained progress queue fills (its progress tracker then exits), so
// Supported is checked before any logon.
func Connect(ctx context.Context, socket string, p bindings.Profile, l handshake.Logon, log *slog.Logger) (*Session, error) {
	if log == nil {
		log = slog.Default()
	}
	var (
		fds *handshake.Fds
		err error
	)
	if p.IsAuto() {
		fds, p, err = dialAuto(ctx, socket, l, log)
	} else {
		if err := Supported(p); err != nil {
			return nil, err
		}
		fds, err = handshake.Dial(ctx, socket, p, l)
	}
	if err != nil {
		return nil, err
	}
	s, err := join(socket, p, l, fds)
	if err != nil {
		_ = fds.Close() // whatever join did not take over
		return nil, err
	}
	log.Info("agave scheduler session up", "socket", socket, "profile", p.Name, "agave", p.Agave,
		"workers", len(s.Workers), "allocator_bytes", s.allocator.Len(), "huge_pages", s.allocator.Huge(),
		"tpu_to_pack_capacity", s.TpuToPack.Capacity(), "allocator_handles", len(s.Allocators))
	return s, nil
}

// join maps and joins every file of fds. Files it maps are taken over (and
// nilled in fds); on error everything it made is undone.
func join(socket string, p bindings.Profile, l handshake.Logon, fds *handshake.Fds) (s *Session, err error) {
	sf, err := ShaqFormat(p.Shaq)
	if err != nil {
		return nil, err
	}
	af, err := RtsAllocFormat(p.RtsAlloc)
	if err != nil {
		return nil, err
	}
	if err := Supported(p); err != nil {
		return nil, err
	}
	s = &Session{Socket: socket, Profile: p, Logon: l}
	defer func() {
		if err != nil {
			_ = s.Close()
			s = nil
		}
	}()
	mapOne := func(fp **os.File, what string) (*shm.Region, error) {
		f := *fp
		if f == nil {
			return nil, fmt.Errorf("agave session on %s: no %s file: %w", socket, what, handshake.ErrProtocol)
		}
		r, err := shm.MapFile(f)
		if err != nil {
			return nil, fmt.Errorf("agave session on %s: mapping %s: %w", socket, what, err)
		}
		*fp = nil // the region owns it now
		s.regions = append(s.regions, r)
		return r, nil
	}

	if s.allocator, err = mapOne(&fds.Allocator, "allocator"); err != nil {
		return s, err
	}
	for k := 0; k < int(l.AllocatorHandles); k++ {
		slot := -1
		if p.ExplicitSlots {
			// rts-alloc 2.0 (Agave 4.0): slot 0 is tpu_to_pack, 1..worker_count
			// are the workers, the client owns the rest (v4.0.0-rc.0
			// scheduling-utils/src/handshake/client.rs).
			slot = 1 + int(l.WorkerCount) + k
		}
		a, err := rtsalloc.Join(s.allocator, af, slot)
		if err != nil {
			return s, fmt.Errorf("agave session on %s: joining allocator handle %d (slot %d, %v): %w", socket, k, slot, af, err)
		}
		s.Allocators = append(s.Allocators, a)
	}

	spscConsumer := func(fp **os.File, what string, elem int) (*shaq.Consumer, error) {
		r, err := mapOne(fp, what)
		if err != nil {
			return nil, err
		}
		c, err := shaq.NewConsumer(r, sf, elem)
		if err != nil {
			return nil, fmt.Errorf("agave session on %s: joining %s as %v consumer: %w", socket, what, sf, err)
		}
		return c, nil
	}
	if s.TpuToPack, err = spscConsumer(&fds.TpuToPack, "tpu_to_pack", bindings.TpuToPackSize); err != nil {
		return s, err
	}
	if s.Progress, err = spscConsumer(&fds.Progress, "progress_tracker", bindings.ProgressSize(p.ABI)); err != nil {
		return s, err
	}
	if p.CheckQueues {
		r, err := mapOne(&fds.PackToCheck, "pack_to_check_worker")
		if err != nil {
			return s, err
		}
		if s.PackToCheck, err = shaq.NewMPMCProducerFormat(r, sf, checkRequestSize(p.ABI)); err != nil {
			return s, fmt.Errorf("agave session on %s: joining pack_to_check_worker as MPMC producer: %w", socket, err)
		}
		if r, err = mapOne(&fds.CheckToPack, "check_worker_to_pack"); err != nil {
			return s, err
		}
		if s.CheckToPack, err = shaq.NewMPMCConsumerFormat(r, sf, bindings.WorkerToPackSize); err != nil {
			return s, fmt.Errorf("agave session on %s: joining check_worker_to_pack as MPMC consumer: %w", socket, err)
		}
	}
	for i := range fds.Workers {
		wf := &fds.Workers[i]
		r, err := mapOne(&wf.PackToWorker, fmt.Sprintf("pack_to_worker[%d]", i))
		if err != nil {
			return s, err
		}
		var w Worker
		if w.PackToWorker, err = shaq.NewProducer(r, sf, bindings.PackToWorkerSize); err != nil {
			return s, fmt.Errorf("agave session on %s: joining pack_to_worker[%d] as %v producer: %w", socket, i, sf, err)
		}
		if w.WorkerToPack, err = spscConsumer(&wf.WorkerToPack, fmt.Sprintf("worker_to_pack[%d]", i), bindings.WorkerToPackSize); err != nil {
			return s, err
		}
		s.Workers = append(s.Workers, w)
	}
	// Everything is mapped: the descriptors are no longer needed.
	for _, r := range s.regions {
		if err := r.CloseFile(); err != nil {
			return s, fmt.Errorf("agave session on %s: closing %s after mapping: %w", socket, r.Name(), err)
		}
	}
	return s, nil
}

// Supported reports whether this build can join p's shared memory. It is
// checked before logging on: a successful logon makes Agave stop its own
// scheduler, so a client must not log on with a session it cannot run.
func Supported(p bindings.Profile) error {
	if !p.ABI.Valid() {
		return fmt.Errorf("agave session: %q is not a concrete ABI profile", p.Name)
	}
	if _, err := ShaqFormat(p.Shaq); err != nil {
		return err
	}
	if _, err := RtsAllocFormat(p.RtsAlloc); err != nil {
		return err
	}
	if p.CheckQueues && p.Shaq != bindings.ShaqV3 && p.Shaq != bindings.ShaqV4 {
		return fmt.Errorf("profile %s (Agave %s): its check queues would be %v MPMC, which shaq has only from 3.0.0: %w", p.Name, p.Agave, p.Shaq, ErrUnsupported)
	}
	return nil
}

// dialAuto logs on with the newest profile and, on a version refusal that
// names a profile this build supports, once more with that one.
func dialAuto(ctx context.Context, socket string, l handshake.Logon, log *slog.Logger) (*handshake.Fds, bindings.Profile, error) {
	p := bindings.Newest()
	fds, err := handshake.Dial(ctx, socket, p, l)
	var r *handshake.RefusalError
	if err == nil || !errors.As(err, &r) || !r.VersionRefused {
		return fds, p, err
	}
	next, ok := r.ProfileFor()
	if !ok || next.Name == p.Name {
		return nil, p, err
	}
	if serr := Supported(next); serr != nil {
		return nil, next, fmt.Errorf("%w; the matching profile cannot run here: %w", err, serr)
	}
	log.Info("agave refused the newest ABI profile; retrying with the validator's",
		"socket", socket, "tried", p.Name, "reason", r.Reason, "profile", next.Name, "agave", next.Agave)
	fds, err = handshake.Dial(ctx, socket, next, l)
	return fds, next, err
}

// checkRequestSize is the element size of pack_to_check_worker.
func checkRequestSize(abi bindings.ABI) int {
	if abi == bindings.ABI44 {
		return bindings.PackToCheckWorkerSize
	}
	return bindings.PackToWorkerSize
}

// Close releases the allocator handles (claimed slots become free again)
// and unmaps everything. Blocks the client still holds stay allocated in
// the validator's allocator; a new session gets new memory.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, a := range s.Allocators {
		if err := a.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.Allocators = nil
	for _, r := range s.regions {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.regions = nil
	return errors.Join(errs...)
}
