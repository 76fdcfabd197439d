package standin

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	// The profile → channels format mapping is the client session's.
	clientsession "github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
)

// SlabSize is the allocator's slab size (Agave's handshake server: 2 MiB).
const SlabSize = 2 << 20

// checkWorkers is how many check workers serve a profile's check queues:
// the logon's count in 4.4; fixed (the 4.3 logon has no count, and how
// many Agave 4.3 runs is not known here) for 4.3; none before.
func checkWorkers(p bindings.Profile, l handshake.Logon, fixed int) int {
	switch {
	case p.CheckWorkerCount:
		return int(l.CheckWorkerCount)
	case p.CheckQueues:
		return fixed
	}
	return 0
}

// session is one logged-on client: the shared memory the stand-in made
// for it and the threads serving it.
type session struct {
	id      int
	profile bindings.Profile
	logon   handshake.Logon
	log     *slog.Logger
	audit   *Audit
	regions []*shm.Region
	allocs  []*rtsalloc.Allocator // 0: tpu_to_pack, then workers, then check workers
	tpu     *shaq.Producer
	feeder  *feeder
	workers []*worker
	prog    *progressPub
	fds     handshake.Fds
	huge    bool // every object that asked for huge pages got them

	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
	done chan struct{} // closed on the first fatal error
	once sync.Once
}

// newRegion creates one memfd of at least size bytes.
func (s *session) newRegion(name string, size int, huge bool) (*shm.Region, error) {
	r, err := shm.Create(name, size, huge)
	if err != nil {
		return nil, err
	}
	s.regions = append(s.regions, r)
	if huge && !r.Huge() {
		if s.huge {
			s.log.Info("huge pages unavailable, using standard pages", "object", name, "reason", r.HugeRefused())
		}
		s.huge = false
	}
	return r, nil
}

// spsc creates a shaq SPSC queue file for capacity elements.
func (s *session) spsc(name string, f shaq.Format, elem, capacity int, huge bool) (*shm.Region, error) {
	r, err := s.newRegion(name, shaq.MinimumFileSize(f, elem, max(capacity, 1)), huge)
	if err != nil {
		return nil, err
	}
	if err := shaq.Create(r, f, elem); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// mpmc creates a shaq MPMC queue file of release f for capacity elements.
func (s *session) mpmc(name string, f shaq.Format, elem, capacity int, huge bool) (*shm.Region, error) {
	r, err := s.newRegion(name, shaq.MinimumMPMCFileSizeFormat(f, elem, max(capacity, 1)), huge)
	if err != nil {
		return nil, err
	}
	if err := shaq.CreateMPMCFormat(r, f, elem); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

// setup creates the session's shared memory as Agave's handshake server
// does (scheduling-utils/src/handshake/server.rs setup_session, as the
// research note §2.1 describes it): an allocator of the requested size
// with 2 MiB slabs and 1 + workers (+ check workers) + handles slots;
// tpu_to_pack, progress (never huge), the check queues where the profile
// has them and a pack_to_worker / worker_to_pack pair per worker, each
// queue holding at least the requested capacity. It then joins the
// stand-in's threads: tpu_to_pack on slot 0, worker i on slot 1+i, check
// worker j on 1+workers+j.
func (st *Standin) setup(s *session) error {
	p, l := s.profile, s.logon
	sf, err := clientsession.ShaqFormat(p.Shaq)
	if err != nil {
		return err
	}
	af, err := clientsession.RtsAllocFormat(p.RtsAlloc)
	if err != nil {
		return err
	}
	huge := st.cfg.HugePages
	s.huge = huge
	nw, nc := int(l.WorkerCount), checkWorkers(p, l, st.cfg.CheckWorkers)
	slots := 1 + nw + nc + int(l.AllocatorHandles)

	ar, err := s.newRegion("agave-scheduler-bindings-allocator", int(min(l.AllocatorSize, 1<<40)), huge)
	if err != nil {
		return fmt.Errorf("allocator: %w", err)
	}
	if err := rtsalloc.Create(ar, af, slots, SlabSize); err != nil {
		return fmt.Errorf("allocator of %d bytes for %d slots (ask for a larger allocator_size): %w", ar.Len(), slots, err)
	}
	join := func(slot int) (*rtsalloc.Allocator, error) {
		if p.ExplicitSlots {
			return rtsalloc.Join(ar, af, slot)
		}
		a, err := rtsalloc.Join(ar, af, -1)
		if err == nil && a.Slot() != slot {
			_ = a.Close()
			return nil, fmt.Errorf("allocator: claimed slot %d, expected %d", a.Slot(), slot)
		}
		return a, err
	}
	for slot := 0; slot < 1+nw+nc; slot++ {
		a, err := join(slot)
		if err != nil {
			return fmt.Errorf("join allocator slot %d: %w", slot, err)
		}
		// Every remote free the allocator refuses is a bad free by the
		// client, named by its offset.
		a.SetRejectHook(func(off uint64, cause error) { s.audit.Refused(slot, off, cause) })
		s.allocs = append(s.allocs, a)
	}
	mem := ar.Bytes()

	tr, err := s.spsc("tpu_to_pack", sf, bindings.TpuToPackSize, int(l.TpuToPackCapacity), huge)
	if err != nil {
		return err
	}
	if s.tpu, err = shaq.NewProducer(tr, sf, bindings.TpuToPackSize); err != nil {
		return fmt.Errorf("tpu_to_pack: %w", err)
	}
	pr, err := s.spsc("progress_tracker", sf, bindings.ProgressSize(p.ABI), int(l.ProgressCapacity), false)
	if err != nil {
		return err
	}
	progOut, err := shaq.NewProducer(pr, sf, bindings.ProgressSize(p.ABI))
	if err != nil {
		return fmt.Errorf("progress_tracker: %w", err)
	}
	s.fds = handshake.Fds{Allocator: ar.File(), TpuToPack: tr.File(), Progress: pr.File()}

	var checkIn *shm.Region
	var checkOut *shm.Region
	if p.CheckQueues {
		// The profile's shaq release: 3.0.0 for 4.3, 4.0.0 for 4.4.
		inElem := bindings.PackToWorkerSize
		if p.ABI == bindings.ABI44 {
			inElem = bindings.PackToCheckWorkerSize
		}
		if checkIn, err = s.mpmc("pack_to_check_worker", sf, inElem, int(l.PackToCheckCapacity), huge); err != nil {
			return err
		}
		if checkOut, err = s.mpmc("check_worker_to_pack", sf, bindings.WorkerToPackSize, int(l.CheckToPackCapacity), huge); err != nil {
			return err
		}
		s.fds.PackToCheck, s.fds.CheckToPack = checkIn.File(), checkOut.File()
	}

	for i := 0; i < nw; i++ {
		in, err := s.spsc(fmt.Sprintf("pack_to_worker_%d", i), sf, bindings.PackToWorkerSize, int(l.PackToWorkerCapacity), huge)
		if err != nil {
			return err
		}
		out, err := s.spsc(fmt.Sprintf("worker_to_pack_%d", i), sf, bindings.WorkerToPackSize, int(l.WorkerToPackCapacity), huge)
		if err != nil {
			return err
		}
		// Agave creates pack_to_worker as a consumer and worker_to_pack as
		// a producer.
		c, err := shaq.NewConsumer(in, sf, bindings.PackToWorkerSize)
		if err != nil {
			return fmt.Errorf("pack_to_worker %d: %w", i, err)
		}
		o, err := shaq.NewProducer(out, sf, bindings.WorkerToPackSize)
		if err != nil {
			return fmt.Errorf("worker_to_pack %d: %w", i, err)
		}
		s.fds.Workers = append(s.fds.Workers, handshake.WorkerFds{PackToWorker: in.File(), WorkerToPack: out.File()})
		s.workers = append(s.workers, newWorker(fmt.Sprintf("worker %d", i), 1+i, p.ABI, false, c, o,
			s.allocs[1+i], mem, st.bank, s.audit, &st.stats, st.cfg.ExecNanosPerCU))
	}
	for j := 0; j < nc; j++ {
		inElem := bindings.PackToWorkerSize
		if p.ABI == bindings.ABI44 {
			inElem = bindings.PackToCheckWorkerSize
		}
		c, err := shaq.NewMPMCConsumerFormat(checkIn, sf, inElem)
		if err != nil {
			return fmt.Errorf("pack_to_check_worker: %w", err)
		}
		o, err := shaq.NewMPMCProducerFormat(checkOut, sf, bindings.WorkerToPackSize)
		if err != nil {
			return fmt.Errorf("check_worker_to_pack: %w", err)
		}
		slot := 1 + nw + j
		s.workers = append(s.workers, newWorker(fmt.Sprintf("check worker %d", j), slot, p.ABI, true, c, o,
			s.allocs[slot], mem, st.bank, s.audit, &st.stats, st.cfg.ExecNanosPerCU))
	}
	s.feeder = newFeeder(st.traffic, &st.cfg.Feed, s.allocs[0], mem, s.tpu, s.tpu.Capacity(),
		st.bank, s.audit, &st.stats, st.truth, st.start)
	s.prog = &progressPub{clock: st.cfg.Clock, abi: p.ABI, out: progOut, bank: st.bank, start: st.start}
	return nil
}

// fatal records a session error and asks the session to end.
func (s *session) fatal(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	s.once.Do(func() { close(s.done) })
}

// start runs the session's threads.
func (s *session) start() {
	s.wg.Add(2 + len(s.workers))
	go func() {
		defer s.wg.Done()
		s.feeder.run(s.stop)
	}()
	go func() {
		defer s.wg.Done()
		if err := s.prog.run(s.stop); err != nil {
			s.fatal(err)
		}
	}()
	for _, w := range s.workers {
		go func() {
			defer s.wg.Done()
			if err := w.run(s.stop); err != nil {
				s.fatal(err)
			}
		}()
	}
}

// SessionReport is the outcome of one session.
type SessionReport struct {
	ID           int           `json:"id"`
	Profile      string        `json:"profile"`
	Workers      int           `json:"workers"`
	CheckWorkers int           `json:"check_workers"`
	HugePages    bool          `json:"huge_pages"`
	Duration     time.Duration `json:"duration_ns"`
	Audit        AuditCounts   `json:"audit"`
	Undelivered  int           `json:"undelivered"` // payloads still unread in tpu_to_pack
	Leaks        []Leak        `json:"leaks,omitempty"`
	Errors       []string      `json:"errors,omitempty"`
	err          error
}

// Err is the session's verdict: fatal conditions, bad frees and leaks.
func (r *SessionReport) Err() error { return r.err }

// finish stops the threads, drains the last remote frees, judges the
// client's memory discipline and releases the shared memory.
func (s *session) finish(began time.Time) SessionReport {
	close(s.stop)
	s.wg.Wait()
	rep := SessionReport{ID: s.id, Profile: s.profile.Name, Workers: int(s.logon.WorkerCount),
		CheckWorkers: len(s.workers) - int(s.logon.WorkerCount), HugePages: s.huge, Duration: time.Since(began)}
	// Bad frees the allocator refused reach the audit through the reject
	// hook set in setup.
	for _, a := range s.allocs {
		if a.Slot() == 0 {
			a.CleanRemoteFrees(s.feeder.visit)
		} else {
			a.CleanRemoteFrees(func(off uint64) { s.audit.Returned(a.Slot(), off) })
		}
		if err := a.Err(); err != nil {
			s.fatal(fmt.Errorf("allocator slot %d: %w", a.Slot(), err))
		}
	}
	// Payloads the client never read are not its leaks; payloads that
	// came back although their message is still unread were freed by a
	// client that did not hold them.
	s.tpu.Sync()
	s.feeder.judgeEarly(s.feeder.nmsg - uint64(s.tpu.Len()))
	undelivered := s.feeder.undelivered(s.tpu.Len())
	for _, off := range undelivered {
		s.audit.Take(off)
	}
	rep.Undelivered = len(undelivered)
	rep.Leaks = s.audit.Outstanding()
	rep.Audit = s.audit.Counts()
	s.mu.Lock()
	errs := append([]error(nil), s.errs...)
	s.mu.Unlock()
	if err := s.audit.Final(); err != nil {
		errs = append(errs, err)
	}
	for _, e := range errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	rep.err = errors.Join(errs...)
	s.close()
	return rep
}

// close releases the allocator handles and unmaps every object.
func (s *session) close() {
	for _, a := range s.allocs {
		_ = a.Close()
	}
	s.allocs = nil
	for _, r := range s.regions {
		_ = r.Close()
	}
	s.regions = nil
}

// progressPub is Agave's progress tracker (solProgTrker): on every tick
// change it moves the bank's slot and publishes a ProgressMessage; a full
// queue ends the session (progress_tracker.rs: "external scheduler is so
// far behind we could not publish a message").
type progressPub struct {
	clock ClockConfig
	abi   bindings.ABI
	out   *shaq.Producer
	bank  *Bank
	start time.Time
	last  Progress
	has   bool
}

func (p *progressPub) run(stop <-chan struct{}) error {
	t := time.NewTicker(max(p.clock.TickDuration()/2, 100*time.Microsecond))
	defer t.Stop()
	for {
		if err := p.tick(); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
	}
}

// tick publishes the progress if it changed since the last message.
func (p *progressPub) tick() error {
	now := p.clock.At(time.Since(p.start))
	if p.has && now == p.last {
		return nil
	}
	p.has, p.last = true, now
	ready := now.LeaderState == LeaderReady
	p.bank.SetSlot(now.Slot, ready)
	m := bindings.Progress{LeaderState: bindings.LeaderState(now.LeaderState), CurrentSlotProgress: now.SlotProgress,
		CurrentSlot: now.Slot, NextLeaderSlot: now.NextLeaderSlot, LeaderRangeEnd: now.LeaderRangeEnd}
	if ready {
		// Agave fills these from the working bank only (progress_tracker.rs
		// produce_progress_message, anza-xyz/agave 08825a82).
		m.Epoch = now.Epoch
		m.RemainingCostUnits = p.bank.RemainingCost()
		m.LatestBlockhash = p.bank.LatestBlockhash()
		m.RemainingAllocatedAccountsDataSize = maxBlockAccountsDataSizeDelta
		m.TargetBankTimeMs = uint16(min(p.clock.SlotDuration/time.Millisecond, 65535))
	}
	p.out.Sync()
	slot, ok := p.out.Reserve()
	if !ok {
		return fmt.Errorf("progress_tracker: %w", ErrQueueFull)
	}
	if err := m.Encode(p.abi, slot); err != nil {
		return fmt.Errorf("progress_tracker: encode: %w", err)
	}
	p.out.Commit()
	return nil
}

// maxBlockAccountsDataSizeDelta is MAX_BLOCK_ACCOUNTS_DATA_SIZE_DELTA
// (block_cost_limits.rs): the stand-in allocates no account data.
const maxBlockAccountsDataSizeDelta = 100_000_000
