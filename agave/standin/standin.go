package standin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	// The profile → channels format mapping is the client session's.
	clientsession "github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/sim"
)

// SocketName is the socket Agave binds in its ledger directory
// (core/src/validator.rs, research note §1).
const SocketName = "scheduler_bindings.ipc"

// SocketPath returns the scheduler-bindings socket of a ledger directory.
func SocketPath(ledger string) string { return filepath.Join(ledger, SocketName) }

// ErrUnsupported: the profile's shared-memory layouts are not all
// implemented by channels/.
var ErrUnsupported = errors.New("ABI profile not supported by this build")

// Supported reports whether the stand-in can serve p exactly: its queue
// and allocator formats must all exist in channels/shaq and
// channels/rtsalloc.
func Supported(p bindings.Profile) error {
	if !p.ABI.Valid() {
		return fmt.Errorf("profile %q is not a concrete ABI profile (want one of 4.0, 4.1, 4.3, 4.4): %w", p.Name, ErrUnsupported)
	}
	sf, err := clientsession.ShaqFormat(p.Shaq)
	if err != nil {
		return fmt.Errorf("profile %s: %w: %w", p.Name, err, ErrUnsupported)
	}
	if _, err := clientsession.RtsAllocFormat(p.RtsAlloc); err != nil {
		return fmt.Errorf("profile %s: %w: %w", p.Name, err, ErrUnsupported)
	}
	if p.CheckQueues && shaq.MPMCHeaderSizeFor(sf) == 0 {
		return fmt.Errorf("profile %s (Agave %s): its check queues are %v MPMC queues, which channels/shaq does not implement: %w",
			p.Name, p.Agave, p.Shaq, ErrUnsupported)
	}
	return nil
}

// Config is a stand-in validator's configuration.
type Config struct {
	// Socket is where to listen (see SocketPath).
	Socket string
	// Profile is the ABI the stand-in speaks (one concrete profile).
	Profile bindings.Profile
	// HugePages asks for 2 MiB pages for the allocator and the queues
	// (never for progress), falling back to standard pages as Agave does.
	HugePages bool
	Bank      BankConfig
	Clock     ClockConfig
	Feed      FeedConfig
	// ExecNanosPerCU is the execution time a batch holds its account
	// locks for, per compute unit it includes (0 = none).
	ExecNanosPerCU uint64
	Logger         *slog.Logger
	// CheckWorkers is how many check workers serve the check queues of a
	// profile whose logon does not name a count (4.3; default 1).
	CheckWorkers int
	// LogEvery is how often a summary line is logged during a session
	// (default 5 s).
	LogEvery time.Duration
}

// Standin is a stand-in validator: it serves Agave's scheduler-bindings
// interface to one client at a time (a new logon replaces the session,
// as in Agave) and keeps its bank, clock and traffic across sessions.
type Standin struct {
	cfg     Config
	log     *slog.Logger
	bank    *Bank
	traffic *sim.Traffic
	truth   *truthTable
	stats   counters
	start   time.Time

	mu      sync.Mutex
	reports []SessionReport
}

// New builds a stand-in validator; Serve starts it.
func New(cfg Config) (*Standin, error) {
	if err := Supported(cfg.Profile); err != nil {
		return nil, fmt.Errorf("stand-in validator: %w", err)
	}
	if cfg.Socket == "" {
		return nil, errors.New("stand-in validator: no socket path (give the ledger directory)")
	}
	cfg.Clock.defaults()
	if err := cfg.Clock.Validate(); err != nil {
		return nil, fmt.Errorf("stand-in validator clock: %w", err)
	}
	if cfg.Feed.TruthLimit <= 0 {
		cfg.Feed.TruthLimit = 1 << 21
	}
	if cfg.Feed.PayerBalance == 0 {
		cfg.Feed.PayerBalance = 1_000 * 1_000_000_000 // 1000 SOL
	}
	if cfg.Feed.UnfundedShare < 0 || cfg.Feed.UnfundedShare > 1 {
		return nil, fmt.Errorf("stand-in validator: unfunded share %v: must be in [0, 1]", cfg.Feed.UnfundedShare)
	}
	if err := cfg.Feed.Validate(); err != nil {
		return nil, fmt.Errorf("stand-in validator: %w", err)
	}
	if cfg.Feed.VotePPS < 0 || cfg.Feed.VotePPS > 1e6 {
		return nil, fmt.Errorf("stand-in validator: vote rate %v/s: must be in [0, 1e6]", cfg.Feed.VotePPS)
	}
	if cfg.CheckWorkers <= 0 {
		cfg.CheckWorkers = 1
	}
	if cfg.CheckWorkers > 64 {
		return nil, fmt.Errorf("stand-in validator: %d check workers: at most 64", cfg.CheckWorkers)
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tr, err := sim.NewTraffic(cfg.Feed.Traffic)
	if err != nil {
		return nil, fmt.Errorf("stand-in validator traffic: %w", err)
	}
	st := &Standin{cfg: cfg, log: cfg.Logger, bank: NewBank(cfg.Bank), traffic: tr,
		truth: newTruthTable(cfg.Feed.TruthLimit), start: time.Now()}
	fundBank(st.bank, tr, &st.cfg.Feed)
	return st, nil
}

// Bank returns the stand-in's bank (for tests and reports).
func (st *Standin) Bank() *Bank { return st.bank }

// Stats returns the counters so far.
func (st *Standin) Stats() Stats {
	s := st.stats.snapshot()
	s.Fees = st.bank.FeesCollected()
	st.mu.Lock()
	for _, r := range st.reports {
		s.BlocksGiven += sum(r.Audit.Given[:])
		s.BlocksReturned += sum(r.Audit.Returned[:])
		s.Outstanding += r.Audit.Outstanding
		s.Undelivered += r.Undelivered
		s.Leaks += len(r.Leaks)
		s.BadFrees += r.Audit.Violations
	}
	st.mu.Unlock()
	return s
}

func sum(v []uint64) uint64 {
	var t uint64
	for _, x := range v {
		t += x
	}
	return t
}

// Reports returns the reports of the sessions that ended.
func (st *Standin) Reports() []SessionReport {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]SessionReport(nil), st.reports...)
}

// Truth returns the ground truth of the fed transaction whose first
// signature is sig.
func (st *Standin) Truth(sig [64]byte) (Truth, bool) {
	st.truth.mu.Lock()
	defer st.truth.mu.Unlock()
	t, ok := st.truth.m[sig]
	return t, ok
}

// Truths calls f for every fed transaction's ground truth (in no order).
func (st *Standin) Truths(f func(sig [64]byte, t Truth)) {
	st.truth.mu.Lock()
	defer st.truth.mu.Unlock()
	for s, t := range st.truth.m {
		f(s, t)
	}
}

// accepted is a session that logged on, or the error of a failed logon.
type accepted struct {
	s   *session
	err error
}

// Serve listens on the socket (removing a stale one), serves sessions
// until ctx ends, and returns the verdict: every session's fatal errors
// and memory-discipline failures, joined (nil when all were clean).
// Refused logons are logged, not returned.
func (st *Standin) Serve(ctx context.Context) error {
	srv, err := handshake.Listen(st.cfg.Socket, st.cfg.Profile)
	if err != nil {
		return err
	}
	st.log.Info("stand-in validator listening", "socket", st.cfg.Socket, "profile", st.cfg.Profile.Name,
		"agave", st.cfg.Profile.Agave)
	actx, cancel := context.WithCancel(ctx)
	next := make(chan accepted)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := 1; ; id++ {
			s, err := st.accept(actx, srv, id)
			if actx.Err() != nil {
				if s != nil {
					s.close()
				}
				return
			}
			select {
			case next <- accepted{s, err}:
			case <-actx.Done():
				if s != nil {
					s.close()
				}
				return
			}
		}
	}()
	var cur *session
	var began time.Time
	var verdicts []error
	end := func() {
		if cur == nil {
			return
		}
		rep := cur.finish(began)
		st.log.Info("session ended", "id", rep.ID, "given", sum(rep.Audit.Given[:]), "returned", sum(rep.Audit.Returned[:]),
			"undelivered", rep.Undelivered, "leaks", len(rep.Leaks), "err", rep.err)
		if rep.err != nil {
			verdicts = append(verdicts, fmt.Errorf("session %d: %w", rep.ID, rep.err))
		}
		st.mu.Lock()
		st.reports = append(st.reports, rep)
		st.mu.Unlock()
		cur = nil
	}
	var done <-chan struct{}
	report := time.NewTicker(st.cfg.LogEvery)
	defer report.Stop()
	for {
		select {
		case <-report.C:
			if cur != nil {
				c := st.stats.snapshot()
				slot, leader := st.bank.Working()
				st.log.Info("stand-in validator", "session", cur.id, "slot", slot, "leader", leader, "fed", c.Fed,
					"dropped", c.DroppedAlloc+c.DroppedQueue, "executed", c.Executed, "checked", c.Checked,
					"fees", st.bank.FeesCollected(), "outstanding", cur.audit.Counts().Outstanding)
			}
		case <-ctx.Done():
			end()
			cancel()
			wg.Wait()
			_ = srv.Close()
			return errors.Join(verdicts...)
		case a := <-next:
			if a.err != nil {
				st.log.Warn("logon refused", "err", a.err)
				continue
			}
			// A new logon replaces the running session (Agave's
			// BankingControlMsg::External).
			end()
			cur, began = a.s, time.Now()
			st.stats.add(func(s *Stats) { s.Sessions++ })
			cur.start()
			done = cur.done
			st.log.Info("session started", "id", cur.id, "workers", cur.logon.WorkerCount,
				"allocator_bytes", cur.logon.AllocatorSize, "huge_pages", cur.huge)
		case <-done:
			st.log.Warn("session failed; waiting for the next logon", "id", cur.id)
			end()
			done = nil
		}
	}
}

// accept serves one logon and returns its session, ready to start.
func (st *Standin) accept(ctx context.Context, srv *handshake.Server, id int) (*session, error) {
	var s *session
	_, err := srv.Accept(ctx, func(l handshake.Logon) (*handshake.Fds, error) {
		s = &session{id: id, profile: st.cfg.Profile, logon: l, log: st.log.With("session", id), audit: NewAudit(),
			stop: make(chan struct{}), done: make(chan struct{})}
		if err := st.setup(s); err != nil {
			s.close()
			s = nil
			return nil, err
		}
		return &s.fds, nil
	})
	if err != nil {
		if s != nil {
			s.close()
		}
		return nil, err
	}
	// The client holds the fds now; keep only the mappings.
	for _, r := range s.regions {
		_ = r.CloseFile()
	}
	return s, nil
}
