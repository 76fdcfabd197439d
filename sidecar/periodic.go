package sidecar

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
)

// periodic runs the loop's timed chores. It is reached at most every
// PublishInterval, so none of it is on the per-packet path.
func (s *Sidecar) periodic(mono, wall int64) {
	s.nextPublish = mono + s.cfg.PublishInterval.Nanoseconds()
	s.beat()
	s.publish(wall)
	if s.cfg.Handoff != nil {
		s.cfg.Handoff.Tick(wall)
	}
	if mono >= s.nextPeer {
		s.nextPeer = mono + s.cfg.PeerCheck.Nanoseconds()
		if mono > 0 {
			s.checkPeers()
		}
	}
	if s.cfg.SaveInterval > 0 && s.cfg.ModelFile != "" && s.learn {
		if s.nextSave == 0 {
			s.nextSave = mono + s.cfg.SaveInterval.Nanoseconds()
		} else if mono >= s.nextSave {
			s.nextSave = mono + s.cfg.SaveInterval.Nanoseconds()
			s.queueSave()
		}
	}
}

func (s *Sidecar) beat() {
	for _, c := range s.in {
		if c != nil {
			c.Beat()
		}
	}
	s.sig.Beat()
	s.sch.Beat()
	s.status.Beat()
	s.out.Beat()
}

// publish copies the live counters into the one-slot snapshot channel,
// replacing an unread older snapshot. Never blocks.
func (s *Sidecar) publish(wall int64) {
	s.snap.At = wall
	for i, c := range s.in {
		s.snap.Joined[i] = c != nil && !s.faults.on[i]
		if c != nil {
			s.snap.Skipped[i] = c.Skipped()
		}
	}
	s.snap.Skipped[chanSig] = s.sig.Skipped()
	s.snap.Skipped[chanSch] = s.sch.Skipped()
	s.snap.Skipped[chanStatus] = s.status.Skipped()
	s.snap.Joined[chanSig], s.snap.Joined[chanSch], s.snap.Joined[chanStatus] = !s.faults.on[chanSig], !s.faults.on[chanSch], !s.faults.on[chanStatus]
	s.snap.Faulted = s.faults.on
	qs := s.queue.Stats()
	s.snap.Counters[Expired] = qs.Expired
	s.snap.QueueLen = s.queue.Len()
	s.snap.QueueLowest = 0
	if e, ok := s.queue.PeekMin(); ok {
		s.snap.QueueLowest = e.Score
	}
	s.snap.RecentLen = s.recent.Len()
	// model.Stats is O(1): table lengths, counters and one shrink.
	ms := s.model.Stats()
	s.snap.ModelIPs, s.snap.ModelNearPrefixes, s.snap.ModelWidePrefixes, s.snap.ModelSigners = ms.IPs, ms.NearPrefixes, ms.WidePrefixes, ms.Signers
	s.snap.ModelEvictedIPs, s.snap.ModelEvictedPrefixes, s.snap.ModelEvictedSigners = ms.EvictedIPs, ms.EvictedPrefixes, ms.EvictedSigners
	s.snap.ModelNewcomer = ms.UnknownIP
	s.snap.ModelBar = ms.Bar
	ps := s.model.PendingStats()
	s.snap.ModelPending, s.snap.ModelPendingExpired, s.snap.ModelPendingDropped = ps.Live, ps.Expired, ps.Dropped

	select {
	case s.pub.snaps <- s.snap:
	default:
		select {
		case <-s.pub.snaps:
		default:
		}
		select {
		case s.pub.snaps <- s.snap:
		default:
		}
	}
	s.snap.MaxStallNanos = 0
	s.snap.MaxLearnNanos = 0
}

// fileState is what the watcher goroutine saw at one channel's path.
type fileState struct {
	id     channels.FileID
	exists bool
}

// watch stats every input channel's path each PeerCheck and hands the
// results to the loop, so the loop itself makes no system call to notice a
// recreated channel.
func (s *Sidecar) watch(done <-chan struct{}) {
	t := time.NewTicker(s.cfg.PeerCheck)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		select {
		case s.pub.files <- s.statFiles():
		default: // the loop has not taken the previous one; it is as good
		}
	}
}

// statFiles looks at every input channel's path.
func (s *Sidecar) statFiles() [numInputs]fileState {
	var st [numInputs]fileState
	for i, name := range inputNames {
		id, err := channels.StatFileID(s.cfg.Channels.Path(name))
		st[i] = fileState{id: id, exists: err == nil}
	}
	return st
}

// checkPeers reports producers whose heartbeat stopped or resumed and,
// from the watcher's latest look at the files, joins channels that appeared
// and rejoins those the validator recreated.
func (s *Sidecar) checkPeers() {
	var files [numInputs]fileState
	fresh := false
	select {
	case files = <-s.pub.files:
		fresh = true
	default:
	}
	for i, name := range packetChannels {
		s.in[i] = rejoin(s, s.in[i], name, i, files[i], fresh)
	}
	s.sig = rejoin(s, s.sig, channels.SigToQoS, chanSig, files[chanSig], fresh)
	if c := rejoin(s, s.sch, channels.SchToQoS, chanSch, files[chanSch], fresh); c != s.sch {
		c.SetMeta(channels.SeedMetaOffset, s.cfg.Seed)
		s.sch = c
	}
	s.status = rejoin(s, s.status, channels.TxStatusCache, chanStatus, files[chanStatus], fresh)
	s.rejoinOutput()
	if len(s.stopped) > 0 {
		s.log.Warn("no producer heartbeat in the last check interval (validator stopped or not started?)",
			"channels", strings.Join(s.stopped, ","), "interval", s.cfg.PeerCheck)
		s.stopped = s.stopped[:0]
	}
	if len(s.resumed) > 0 {
		s.log.Info("producer heartbeat resumed", "channels", strings.Join(s.resumed, ","))
		s.resumed = s.resumed[:0]
	}
}

// rejoin checks one consumer's producer heartbeat and, when the watcher saw
// a different file at its path (or a file where there was none), joins
// that file instead; a channel detached after a fault is joined again as
// soon as its file is valid. It returns the consumer to use from now on:
// the old one as long as no new file can be joined (a removed file keeps
// its mapping until the validator creates a new one), nil only for an
// optional channel that has not appeared.
func rejoin[R channels.Record](s *Sidecar, c *channels.Consumer[R], name string, idx int, f fileState, fresh bool) *channels.Consumer[R] {
	faulted := s.faults.on[idx]
	if c != nil && !faulted {
		alive := c.ProducerAlive()
		s.snap.ProducerAlive[idx] = alive
		switch {
		case !alive && !s.stalled[idx]:
			s.stalled[idx] = true
			s.stopped = append(s.stopped, name)
		case alive && s.stalled[idx]:
			s.stalled[idx] = false
			s.resumed = append(s.resumed, name)
		}
	}
	if !faulted && (!fresh || !f.exists || (c != nil && c.FileID() == f.id)) {
		return c
	}
	nc, err := channels.OpenConsumer[R](s.cfg.Channels, spec(name))
	if err != nil {
		if faulted {
			s.joinFailedAfterFault(idx, err)
		} else if !s.joinWarned[idx] {
			s.joinWarned[idx] = true
			s.log.Warn("channel file changed but cannot be joined yet; retrying", "channel", name, "err", err)
		}
		return c
	}
	s.joinWarned[idx] = false
	s.stalled[idx] = false
	if faulted {
		_ = c.Close() // detached: only forgets it
		s.rejoinedAfterFault(idx, nc.Path())
	} else if c != nil {
		_ = c.Close()
		s.snap.Counters[Rejoins]++
		s.log.Info("channel recreated by its producer; rejoined", "channel", name, "path", nc.Path())
	} else {
		s.log.Info("channel appeared; joined", "channel", name, "path", nc.Path())
	}
	return nc
}

// queueSave serialises the model and hands the bytes to the saver
// goroutine; the file write and fsync happen off the loop. A save still in
// progress makes this one skip.
func (s *Sidecar) queueSave() {
	b, err := s.model.AppendBinary(nil)
	if err != nil {
		s.log.Error("serialise model", "err", err)
		return
	}
	select {
	case s.pub.saves <- b:
	default:
		s.log.Warn("previous model save still in progress; skipping this one")
	}
}

func (s *Sidecar) saver() {
	for b := range s.pub.saves {
		start := time.Now()
		if err := model.WriteFileAtomic(s.cfg.ModelFile, b); err != nil {
			s.log.Error("periodic model save failed", "file", s.cfg.ModelFile, "err", err)
			select {
			case s.pub.saveErrs <- fmt.Errorf("periodic save: %w", err):
			default:
			}
			continue
		}
		s.log.Debug("model saved", "file", s.cfg.ModelFile, "bytes", len(b), "took", time.Since(start))
	}
}

func (s *Sidecar) closeChannels() error {
	var errs []error
	for i, c := range s.in {
		if c != nil {
			errs = append(errs, c.Close())
			s.in[i] = nil
		}
	}
	if s.sig != nil {
		errs = append(errs, s.sig.Close())
	}
	if s.sch != nil {
		errs = append(errs, s.sch.Close())
	}
	if s.status != nil {
		errs = append(errs, s.status.Close())
	}
	if s.out != nil {
		errs = append(errs, s.out.Close())
	}
	return errors.Join(errs...)
}
