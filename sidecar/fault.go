package sidecar

import (
	"errors"

	"github.com/solqos/qos/channels"
)

// Channel faults. Another process can shrink a channel file the loop has
// mapped (a peer built for another capacity or record size, a `truncate`),
// and the loop's next access past the new end raises SIGBUS. Run turns
// memory faults on its goroutine into panics (debug.SetPanicOnFault), and
// every call into channel code from the loop goes through one of the
// guarded entry points below, whose deferred recoverFault is the one place
// a fault is handled: the faulting channel is found by the address (or by
// its file's size, when the system reports no address), detached without
// being touched again, logged once as an error naming it, and counted. The
// rest of that step or chore is dropped (at most one batch of records in
// flight: the packets popped from the channel, or taken from the queue for
// qos_to_sig); every other channel is served as before. A panic that is
// not a fault in a channel mapping goes on as a crash, as before.
//
// A detached input reads as empty; while qos_to_sig is detached, send
// keeps packets queued (they expire by the queue TTL). Every peer check
// tries to join the faulted channel's file again and succeeds once it is a
// valid channel of the right layout (the same inode, restored, or a new
// file): the channel is then served again and the rejoin counted.

// chanOut indexes qos_to_sig after the input channels, in the per-channel
// fault arrays.
const (
	chanOut     = numInputs
	numChannels = numInputs + 1
)

// channelNames names every channel the loop maps, inputs then qos_to_sig.
var channelNames = [numChannels]string{
	channels.TPU, channels.FWD, channels.RE1, channels.RE2,
	channels.SigToQoS, channels.SchToQoS, channels.TxStatusCache, channels.QoSToSig,
}

// faultState is the loop's record of faulted channels.
type faultState struct {
	on     [numChannels]bool // detached after a fault, not joined again yet
	warned [numChannels]bool // a failed join of the faulted file was logged
}

// guardedStep is step with channel faults handled.
func (s *Sidecar) guardedStep(mono, wall int64) int {
	defer s.recoverFault()
	return s.step(mono, wall)
}

// guardedPeriodic is periodic with channel faults handled.
func (s *Sidecar) guardedPeriodic(mono, wall int64) {
	defer s.recoverFault()
	s.periodic(mono, wall)
}

// guarded runs f with channel faults handled (shutdown; not per step).
func (s *Sidecar) guarded(f func()) {
	defer s.recoverFault()
	f()
}

// recoverFault is deferred by the guarded entry points: it detaches the
// channel a memory fault hit, or lets any other panic go on.
func (s *Sidecar) recoverFault() {
	r := recover()
	if r == nil {
		return
	}
	addr, ok := channels.FaultAddr(r)
	if !ok || !s.detachFaulted(addr) {
		panic(r)
	}
}

// detachFaulted detaches every channel the fault at addr (0: unknown)
// hit, and reports whether there was one.
func (s *Sidecar) detachFaulted(addr uintptr) bool {
	hit := false
	for i, c := range s.in {
		if c != nil && c.Faulted(addr) {
			s.noteFault(i, c.Detach(addr))
			hit = true
		}
	}
	if s.sig != nil && s.sig.Faulted(addr) {
		s.noteFault(chanSig, s.sig.Detach(addr))
		hit = true
	}
	if s.sch != nil && s.sch.Faulted(addr) {
		s.noteFault(chanSch, s.sch.Detach(addr))
		hit = true
	}
	if s.status != nil && s.status.Faulted(addr) {
		s.noteFault(chanStatus, s.status.Detach(addr))
		hit = true
	}
	if s.out != nil && s.out.Faulted(addr) {
		s.noteFault(chanOut, s.out.Detach(addr))
		hit = true
	}
	return hit
}

// noteFault logs and counts the fault of channel idx.
func (s *Sidecar) noteFault(idx int, err error) {
	s.faults.on[idx] = true
	s.faults.warned[idx] = false
	s.snap.Counters[ChannelFaults]++
	s.snap.Faults[idx]++
	s.log.Error("channel file shrank under its mapping; channel dropped until its file is valid again, other channels go on",
		"channel", channelNames[idx], "err", err)
}

// rejoinedAfterFault records that the faulted channel idx was joined
// again at path.
func (s *Sidecar) rejoinedAfterFault(idx int, path string) {
	s.faults.on[idx] = false
	s.faults.warned[idx] = false
	s.snap.Counters[Rejoins]++
	s.log.Info("channel file valid again; rejoined after the fault", "channel", channelNames[idx], "path", path)
}

// joinFailedAfterFault logs, once per fault, that the faulted channel's
// file cannot be joined yet.
func (s *Sidecar) joinFailedAfterFault(idx int, err error) {
	if !s.faults.warned[idx] {
		s.faults.warned[idx] = true
		s.log.Warn("faulted channel not valid yet; retrying at every peer check", "channel", channelNames[idx], "err", err)
	}
}

// rejoinOutput joins qos_to_sig again after a fault, creating or
// initialising its file as at start when it is missing or zeroed.
func (s *Sidecar) rejoinOutput() {
	if !s.faults.on[chanOut] {
		return
	}
	p, err := channels.OpenProducer[channels.Packet](s.cfg.Channels, spec(channels.QoSToSig))
	if err != nil {
		s.joinFailedAfterFault(chanOut, err)
		return
	}
	_ = s.out.Close() // detached: only forgets it
	s.out = p
	s.outWindow = p.Window()
	s.rejoinedAfterFault(chanOut, p.Path())
}

// closeAll closes every channel at shutdown. A file found shrunk only now
// is logged and counted like any fault, not returned: the run itself
// ended cleanly.
func (s *Sidecar) closeAll() error {
	err := s.closeChannels()
	if err == nil {
		return nil
	}
	var keep []error
	for _, e := range flatten(err) {
		var ce *channels.Error
		if errors.As(e, &ce) && errors.Is(e, channels.ErrTruncated) {
			s.snap.Counters[ChannelFaults]++
			s.log.Error("channel file shrank under its mapping (found at shutdown)", "path", ce.Path, "err", e)
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

// flatten lists the errors inside nested errors.Join values.
func flatten(err error) []error {
	if _, ok := err.(*channels.Error); ok {
		return []error{err} // its Unwrap lists its sentinel and cause
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
