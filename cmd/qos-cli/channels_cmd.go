package main

import (
	"errors"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/cmd/internal/cliflags"
)

// channelFlags returns the flags that locate the channel files, shared by
// every command that opens channels and by the daemon. Read them back with
// channelOptions.
func channelFlags() []cli.Flag { return cliflags.ChannelFlags() }

// channelOptions reads the flags of channelFlags.
func channelOptions(c *cli.Context) channels.Options { return cliflags.ChannelOptions(c) }

// selectChannels returns the channels named in the arguments, or all of
// them when there are none.
func selectChannels(c *cli.Context) ([]channels.Spec, error) {
	if c.NArg() == 0 {
		return channels.Table[:], nil
	}
	var specs []channels.Spec
	for _, name := range c.Args().Slice() {
		s, ok := channels.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("unknown channel %q (known: %s)", name, channelNames())
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func channelNames() string {
	names := make([]string, len(channels.Table))
	for i, s := range channels.Table {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

const channelArgs = "[CHANNEL...]"

func channelArgsHelp() string {
	return "\nCHANNEL is one of (default: all of them): " + channelNames() + "."
}

func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "create the channel files (idempotent)",
		ArgsUsage: channelArgs,
		Description: "Creates and initialises every channel file that is missing (or was never initialised),\n" +
			"and checks that the existing ones match the channel table, changing nothing in them.\n" +
			"Prints each file, its size, its mode and owner, and whether it was created or joined.\n" +
			"On huge pages (--use-huge-pages) reserve the pages first: echo N > /proc/sys/vm/nr_hugepages,\n" +
			"and mount hugetlbfs: mount -t hugetlbfs none /mnt/hugepages.\n" + channelArgsHelp(),
		Flags: channelFlags(),
		Action: func(c *cli.Context) error {
			specs, err := selectChannels(c)
			if err != nil {
				return err
			}
			o := channelOptions(c)
			if err := channels.CheckHugePages(o, specs); err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			defer w.Flush()
			for i, s := range specs {
				created, err := channels.Create(o, s)
				if err != nil {
					w.Flush()
					return err
				}
				state := "joined"
				if created {
					state = "created"
				}
				st, err := channels.Inspect(o, s)
				if err != nil {
					w.Flush()
					return err
				}
				if i == 0 {
					fmt.Fprintln(w, "STATE\tFILE\tBYTES\tRECORDS\tMODE\tOWNER")
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d × %d-byte %s\t%#o\t%s\n", state, st.Path, st.FileSize,
					s.Capacity, s.RecordSize, s.RecordKind(), st.Mode.Perm(), owner(st.UID, st.GID))
			}
			return nil
		},
	}
}

func removeCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "delete the channel files",
		ArgsUsage: channelArgs,
		Description: "Deletes the channel files. Processes that still have a channel mapped keep using\n" +
			"their copy; the qos daemon notices the file is gone and rejoins when it is created again.\n" +
			channelArgsHelp(),
		Flags: channelFlags(),
		Action: func(c *cli.Context) error {
			specs, err := selectChannels(c)
			if err != nil {
				return err
			}
			o := channelOptions(c)
			for _, s := range specs {
				err := channels.Remove(o, s)
				switch {
				case err == nil:
					fmt.Fprintf(c.App.Writer, "removed  %s\n", o.Path(s.Name))
				case errors.Is(err, channels.ErrNotExist):
					fmt.Fprintf(c.App.Writer, "absent   %s\n", o.Path(s.Name))
				default:
					return err
				}
			}
			return nil
		},
	}
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show each channel's header: capacity, tail, head, lag, heartbeats, seed",
		ArgsUsage: channelArgs,
		Description: "Reads each channel's header twice, --interval apart, and prints its capacity, the\n" +
			"producer's tail, the consumer's head, the lag between them, both heartbeats and whether\n" +
			"they moved in the interval (alive/stalled), the tail's rate, and the hash seed that the\n" +
			"validator publishes in sch_to_qos. Needs only read access. Exits 1 if any channel is\n" +
			"missing or unusable.\n" + channelArgsHelp(),
		Flags: append(channelFlags(), &cli.DurationFlag{
			Name:    "interval",
			Usage:   "time between the two samples that tell whether heartbeats move; 0 takes one sample",
			Value:   time.Second,
			EnvVars: []string{"QOS_INSPECT_INTERVAL"},
		}),
		Action: func(c *cli.Context) error {
			specs, err := selectChannels(c)
			if err != nil {
				return err
			}
			interval := c.Duration("interval")
			if interval < 0 {
				return fmt.Errorf("--interval %v is negative", interval)
			}
			o := channelOptions(c)
			first := make([]channels.Status, len(specs))
			errs := make([]error, len(specs))
			for i, s := range specs {
				first[i], errs[i] = channels.Inspect(o, s)
			}
			second := first
			if interval > 0 {
				select {
				case <-time.After(interval):
				case <-c.Context.Done():
					return c.Context.Err()
				}
				second = make([]channels.Status, len(specs))
				for i, s := range specs {
					second[i], errs[i] = channels.Inspect(o, s)
				}
			}
			return printInspect(c.App.Writer, first, second, errs, interval)
		},
	}
}

// printInspect prints one row per channel from two samples taken interval
// apart (the same sample twice when interval is 0). It returns an error
// naming the first unusable channel, if any.
func printInspect(out io.Writer, first, second []channels.Status, errs []error, interval time.Duration) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHANNEL\tSTATE\tCAPACITY\tTAIL\tHEAD\tLAG\tPRODUCER HB\tCONSUMER HB\tRECORDS/S\tMETA\tFILE")
	bad := 0
	var firstErr error
	for i, b := range second {
		if errs[i] != nil {
			bad++
			if firstErr == nil {
				firstErr = errs[i]
			}
			fmt.Fprintf(w, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", b.Spec.Name, b.State, b.Path)
			continue
		}
		a := first[i]
		rate := "-"
		if interval > 0 && b.Tail >= a.Tail {
			rate = strconv.FormatFloat(float64(b.Tail-a.Tail)/interval.Seconds(), 'f', 0, 64)
		}
		meta := "-"
		if b.Spec.Name == channels.SchToQoS {
			meta = fmt.Sprintf("seed=%#016x", b.MetaWord(channels.SeedMetaOffset))
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", b.Spec.Name, b.State, b.Capacity,
			b.Tail, b.Head, b.Lag(),
			heartbeat(a.ProducerHeartbeat, b.ProducerHeartbeat, interval),
			heartbeat(a.ConsumerHeartbeat, b.ConsumerHeartbeat, interval),
			rate, meta, b.Path)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("%d of %d channels unusable; first: %w", bad, len(second), firstErr)
	}
	return nil
}

// heartbeat shows a heartbeat value and whether it moved between samples.
func heartbeat(a, b uint64, interval time.Duration) string {
	switch {
	case interval == 0:
		return strconv.FormatUint(b, 10)
	case a != b:
		return strconv.FormatUint(b, 10) + " alive"
	}
	return strconv.FormatUint(b, 10) + " stalled"
}

// owner formats uid:gid with names where they resolve.
func owner(uid, gid uint32) string {
	u := strconv.FormatUint(uint64(uid), 10)
	if x, err := user.LookupId(u); err == nil {
		u = x.Username
	}
	g := strconv.FormatUint(uint64(gid), 10)
	if x, err := user.LookupGroupId(g); err == nil {
		g = x.Name
	}
	return u + ":" + g
}
