package packmode

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/agave/session"
)

// RunConfig is what a Runner needs to log on and run.
type RunConfig struct {
	// Socket is the validator's scheduler-bindings socket
	// (<ledger>/scheduler_bindings.ipc).
	Socket string
	// Profile is the ABI profile, or bindings.Auto.
	Profile bindings.Profile
	// Logon are the session's sizes (worker count, queue capacities,
	// allocator size); AllocatorHandles must be ≥ 1.
	Logon handshake.Logon
	Loop  Config
	// BackoffMin and BackoffMax bound the wait between logon attempts
	// (defaults 100 ms and 5 s).
	BackoffMin, BackoffMax time.Duration
	// Once: return after the first session ends instead of reconnecting
	// (tests).
	Once bool
	// StatsInterval is the period of the summary log line and the window
	// of Runner.Window (default DefaultStatsInterval).
	StatsInterval time.Duration
}

// Runner logs on, runs sessions until its context ends, and reconnects
// with backoff when a session is lost.
type Runner struct {
	rc  RunConfig
	cfg Config
	st  Stats // owned by the loop goroutine

	mu  sync.Mutex
	pub Stats // published copy, under mu
	up  bool

	obs observer // the last stats interval (observe.go)
}

// NewRunner checks rc and returns a Runner.
func NewRunner(rc RunConfig) (*Runner, error) {
	cfg, err := rc.Loop.withDefaults()
	if err != nil {
		return nil, err
	}
	if rc.Socket == "" {
		return nil, errors.New("pack mode: no scheduler-bindings socket (--ledger or --bindings-socket)")
	}
	if rc.Logon.AllocatorHandles == 0 {
		rc.Logon.AllocatorHandles = 1
	}
	if rc.BackoffMin <= 0 {
		rc.BackoffMin = 100 * time.Millisecond
	}
	if rc.BackoffMax < rc.BackoffMin {
		rc.BackoffMax = max(5*time.Second, rc.BackoffMin)
	}
	return &Runner{rc: rc, cfg: cfg}, nil
}

// Stats returns the counters as last published (every ~50 ms and at the
// end of each session) and whether a session is up.
func (r *Runner) Stats() (Stats, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pub, r.up
}

func (r *Runner) publish(up bool) {
	r.mu.Lock()
	r.pub = r.st
	r.up = up
	r.mu.Unlock()
}

// Run runs sessions until ctx ends (then it returns nil after draining
// the current session) or, with Once, until the first session ends.
func (r *Runner) Run(ctx context.Context) error {
	log := r.cfg.Logger
	backoff := r.rc.BackoffMin
	defer r.startObserver()()
	for {
		s, err := session.Connect(ctx, r.rc.Socket, r.rc.Profile, r.rc.Logon, log)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A profile this build cannot run never becomes runnable; in
			// Once mode (tests) only a socket not there yet is waited for.
			if errors.Is(err, session.ErrUnsupported) || r.rc.Once && !errors.Is(err, handshake.ErrSocketMissing) {
				return err
			}
			log.Warn("cannot log on to the validator's scheduler bindings; retrying", "socket", r.rc.Socket, "err", err, "in", backoff)
			if !sleepCtx(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, r.rc.BackoffMax)
			continue
		}
		backoff = r.rc.BackoffMin
		r.st.Sessions++
		err = r.runSession(ctx, s)
		if cerr := s.Close(); cerr != nil {
			log.Warn("closing the session", "err", cerr)
		}
		r.publish(false)
		if ctx.Err() != nil {
			return err
		}
		log.Error("agave scheduler session lost; the validator has fallen back to its own scheduler until qos logs on again",
			"socket", r.rc.Socket, "reason", err)
		if r.rc.Once {
			return err
		}
		if !sleepCtx(ctx, backoff) {
			return nil
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runSession runs the busy loop on s until ctx ends (drain, nil) or the
// session is lost (an error wrapping errSessionLost).
func (r *Runner) runSession(ctx context.Context, s *session.Session) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, err := newLoop(r.cfg, s, &r.st)
	if err != nil {
		return err
	}
	start := time.Now()
	l.start = start
	l.wall0 = start.UnixNano()
	if l.cfg.Rows != nil {
		// Whatever way the session ends, its last rows go to the writer.
		defer l.cfg.Rows.Flush()
	}
	lastProgress := int64(0)
	nextPub := int64(0)
	idle := 0
	done := ctx.Done()
	for pass := 0; ; pass++ {
		l.now = int64(time.Since(start))
		work := l.drainProgress()
		if work > 0 {
			lastProgress = l.now
		}
		work += l.drainWorkers()
		work += l.drainCheckQueue()
		work += l.drainTPU()
		l.expire(64)
		l.checkStage()
		l.schedule()
		if pass&255 == 0 {
			select {
			case <-done:
				return l.shutdown(start)
			default:
			}
			if err := l.sessionErr(); err != nil {
				l.abandon()
				return err
			}
			if l.now-lastProgress > int64(r.cfg.ProgressTimeout) {
				l.abandon()
				return fmt.Errorf("%w: no progress message for %v on %s", errSessionLost, r.cfg.ProgressTimeout, s.Socket)
			}
			if l.now >= nextPub {
				if l.cfg.Rows != nil {
					l.cfg.Rows.Tick(l.wall0 + l.now)
				}
				l.snapshot()
				r.publish(true)
				nextPub = l.now + int64(50*time.Millisecond)
			}
		}
		if work > 0 {
			idle = 0
			continue
		}
		idle++
		switch {
		case r.cfg.IdleSleep > 0 && idle > 4096:
			time.Sleep(r.cfg.IdleSleep)
		case idle > 64:
			runtime.Gosched()
		}
	}
}

// sessionErr reports shared state the validator broke.
func (l *Loop) sessionErr() error {
	if err := l.s.TpuToPack.Err(); err != nil {
		return fmt.Errorf("%w: tpu_to_pack: %w", errSessionLost, err)
	}
	if err := l.s.Progress.Err(); err != nil {
		return fmt.Errorf("%w: progress_tracker: %w", errSessionLost, err)
	}
	for i, w := range l.s.Workers {
		if err := w.WorkerToPack.Err(); err != nil {
			return fmt.Errorf("%w: worker_to_pack[%d]: %w", errSessionLost, i, err)
		}
		if err := w.PackToWorker.Err(); err != nil {
			return fmt.Errorf("%w: pack_to_worker[%d]: %w", errSessionLost, i, err)
		}
	}
	if err := l.alloc.Err(); err != nil {
		return fmt.Errorf("%w: allocator: %w", errSessionLost, err)
	}
	return nil
}

// snapshot refreshes the gauges of Stats.
func (l *Loop) snapshot() {
	l.st.QueueLen = l.q.Len()
	l.st.VoteLen = l.vLen
	l.st.LocksHeld = l.sched.Locks().Len()
	inflight := l.batchesOut()
	l.st.InFlight = inflight
	// The allocator's own count, not the loop's bookkeeping: a batch or
	// check array the loop forgot to free shows here and not in InFlight.
	l.st.LiveOwnBlocks = l.alloc.LiveBlocks()
	b := l.sched.Budget()
	l.st.CostUsed = b.InFlight()
	l.st.SlotLimit = l.cfg.Budget.BlockLimit
	l.snapshotMeters()
}

// shutdown stops admitting, waits (bounded) for the batches in flight,
// then frees every payload still held.
func (l *Loop) shutdown(start time.Time) error {
	deadline := l.now + int64(l.cfg.DrainTimeout)
	for {
		l.now = int64(time.Since(start))
		l.drainProgress()
		l.drainWorkers()
		l.drainCheckQueue()
		inflight := l.batchesOut()
		if inflight == 0 || l.now > deadline {
			if inflight > 0 {
				l.cfg.Logger.Warn("shutting down with batches in flight; their payloads stay with the validator", "batches", inflight)
			}
			break
		}
		runtime.Gosched()
	}
	// Requeued results went back into the queue: free everything held.
	// What is still unread in tpu_to_pack is the validator's.
	l.abandon()
	l.snapshot()
	return nil
}

// batchesOut counts the batches sent and not answered (own arrays live).
func (l *Loop) batchesOut() int {
	n := 0
	for i := range l.rings {
		n += l.rings[i].size
	}
	for i := range l.checks {
		if l.checks[i].inUse && l.checks[i].worker < 0 {
			n++
		}
	}
	return n
}

// abandon frees every queued payload and vote (not the ones in flight:
// their worker may still read them).
func (l *Loop) abandon() {
	for l.cLen > 0 {
		s := l.checkLane[l.cHead]
		l.cHead = (l.cHead + 1) % len(l.checkLane)
		l.cLen--
		l.end(s, EndShutdown)
	}
	for {
		nd, ok := l.q.popMax()
		if !ok {
			break
		}
		l.end(nd.slot, EndShutdown)
	}
	for {
		s, ok := l.popVote()
		if !ok {
			break
		}
		l.end(s, EndShutdown)
	}
}
