package standin

import (
	"fmt"
	"time"
)

// Leader states of a progress message (agave_scheduler_bindings
// leader_state, research note §4.1).
const (
	NotLeader      uint8 = 0
	LeaderStarting uint8 = 1
	LeaderReady    uint8 = 2
)

// ClockConfig is the stand-in's slot clock and leader schedule. Zero
// fields take the defaults named.
type ClockConfig struct {
	// StartSlot is the slot at time 0 (default 1000).
	StartSlot uint64
	// SlotDuration is a slot's length (default 400 ms, Agave's
	// DEFAULT_MS_PER_SLOT).
	SlotDuration time.Duration
	// TicksPerSlot divides a slot (default 64, DEFAULT_TICKS_PER_SLOT);
	// progress is published on every tick change, as Agave's
	// progress_tracker does.
	TicksPerSlot int
	// LeaderWindow consecutive slots are ours every LeaderEvery slots,
	// starting at slots that are multiples of LeaderEvery (defaults 4 and
	// 8: leader half the time). LeaderEvery == LeaderWindow means always
	// leader.
	LeaderWindow int
	LeaderEvery  int
	// BankStartTicks is how many ticks into a leader slot the bank
	// becomes ready (LEADER_STARTING before; default 1).
	BankStartTicks int
	// SlotsPerEpoch gives the epoch (default 432 000).
	SlotsPerEpoch uint64
}

// DefaultClockConfig returns the defaults.
func DefaultClockConfig() ClockConfig {
	return ClockConfig{StartSlot: 1000, SlotDuration: 400 * time.Millisecond, TicksPerSlot: 64,
		LeaderWindow: 4, LeaderEvery: 8, BankStartTicks: 1, SlotsPerEpoch: 432_000}
}

func (c *ClockConfig) defaults() {
	d := DefaultClockConfig()
	if c.StartSlot == 0 {
		c.StartSlot = d.StartSlot
	}
	if c.SlotDuration == 0 {
		c.SlotDuration = d.SlotDuration
	}
	if c.TicksPerSlot == 0 {
		c.TicksPerSlot = d.TicksPerSlot
	}
	if c.LeaderWindow == 0 {
		c.LeaderWindow = d.LeaderWindow
	}
	if c.LeaderEvery == 0 {
		c.LeaderEvery = max(d.LeaderEvery, c.LeaderWindow)
	}
	if c.SlotsPerEpoch == 0 {
		c.SlotsPerEpoch = d.SlotsPerEpoch
	}
}

// Validate reports the first field out of range.
func (c *ClockConfig) Validate() error {
	switch {
	case c.SlotDuration < time.Millisecond || c.SlotDuration > time.Minute:
		return fmt.Errorf("slot duration %v: must be in [1ms, 1m]", c.SlotDuration)
	case c.TicksPerSlot < 1 || c.TicksPerSlot > 254:
		return fmt.Errorf("ticks per slot %d: must be in [1, 254]", c.TicksPerSlot)
	case c.LeaderWindow < 1:
		return fmt.Errorf("leader window %d: must be at least 1 slot", c.LeaderWindow)
	case c.LeaderEvery < c.LeaderWindow:
		return fmt.Errorf("leader period %d: must be at least the window (%d slots)", c.LeaderEvery, c.LeaderWindow)
	case c.BankStartTicks < 0 || c.BankStartTicks >= c.TicksPerSlot:
		return fmt.Errorf("bank start ticks %d: must be in [0, ticks per slot %d)", c.BankStartTicks, c.TicksPerSlot)
	case c.SlotsPerEpoch == 0:
		return fmt.Errorf("slots per epoch: must be positive")
	}
	return nil
}

// Progress is one progress report: the fields of every profile's
// ProgressMessage before the bank's own (remaining cost, blockhash).
type Progress struct {
	LeaderState    uint8
	SlotProgress   uint8 // percent through the slot
	Epoch          uint64
	Slot           uint64
	NextLeaderSlot uint64
	LeaderRangeEnd uint64
	Tick           int // tick within the slot
}

// At returns the progress elapsed after time 0.
func (c *ClockConfig) At(elapsed time.Duration) Progress {
	if elapsed < 0 {
		elapsed = 0
	}
	tickLen := c.SlotDuration / time.Duration(c.TicksPerSlot)
	ticks := uint64(elapsed / tickLen)
	slot := c.StartSlot + ticks/uint64(c.TicksPerSlot)
	tick := int(ticks % uint64(c.TicksPerSlot))
	p := Progress{Slot: slot, Tick: tick, Epoch: slot / c.SlotsPerEpoch,
		SlotProgress: uint8(100 * tick / c.TicksPerSlot)}
	every, window := uint64(c.LeaderEvery), uint64(c.LeaderWindow)
	start := slot - slot%every
	if slot-start < window {
		p.NextLeaderSlot, p.LeaderRangeEnd = start, start+window-1
		if tick >= c.BankStartTicks {
			p.LeaderState = LeaderReady
		} else {
			p.LeaderState = LeaderStarting
		}
	} else {
		p.NextLeaderSlot, p.LeaderRangeEnd = start+every, start+every+window-1
	}
	return p
}

// TickDuration returns the length of a tick.
func (c *ClockConfig) TickDuration() time.Duration {
	return c.SlotDuration / time.Duration(c.TicksPerSlot)
}
