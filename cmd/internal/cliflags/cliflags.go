// Package cliflags holds the command-line flags that the qos daemon and
// qos-cli share (channel location, model constants, logging), so both
// spell and document them the same way, and WithEnv, which gives every
// flag a QOS_ environment variable derived from its name: a flag's name is
// written once, in its declaration, and read back through the flag
// (flag.Get(c)), never by a second spelling.
package cliflags

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
)

// Flag categories shown in --help.
const (
	CatChannels = "Channels"
	CatModel    = "Model"
	CatQueue    = "Queue and pacing"
	CatDatabase = "Database"
	CatOps      = "Operations"
)

// Env returns the environment variable name for a flag: QOS_ and the flag
// name in upper case with dashes as underscores.
func Env(flag string) []string {
	return []string{"QOS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// WithEnv gives each flag that has no environment variable yet the one Env
// derives from its name, and returns flags. It panics on a flag type it
// does not know (a programming error, caught by every command's tests).
func WithEnv(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.BoolFlag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.IntFlag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.Int64Flag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.Uint64Flag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.Float64Flag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.DurationFlag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		case *cli.TimestampFlag:
			f.EnvVars = envOr(f.EnvVars, f.Name)
		default:
			panic(fmt.Sprintf("BUG: cliflags.WithEnv: flag type %T", f))
		}
	}
	return flags
}

func envOr(env []string, name string) []string {
	if len(env) > 0 {
		return env
	}
	return Env(name)
}

// WithEnvAll applies WithEnv to the flags of cmds and of their
// subcommands, recursively.
func WithEnvAll(cmds []*cli.Command) []*cli.Command {
	for _, c := range cmds {
		c.Flags = WithEnv(c.Flags)
		WithEnvAll(c.Subcommands)
	}
	return cmds
}

// The shared flags' names, each written once here.
const (
	flagPrefix       = "prefix"
	flagUseHugePages = "use-huge-pages"
	flagHugetlbfs    = "hugetlbfs"
	flagShmDir       = "shm-dir"
	flagGroup        = "group"
	flagLogLevel     = "log-level"
	flagLogFormat    = "log-format"
)

// ChannelFlags locate the channel files.
func ChannelFlags() []cli.Flag {
	return WithEnv([]cli.Flag{
		&cli.StringFlag{Name: flagPrefix, Category: CatChannels,
			Usage: "prefix of every channel file name, so several instances (or tests) can coexist"},
		&cli.BoolFlag{Name: flagUseHugePages, Category: CatChannels,
			Usage: "back the channels with 2 MiB huge pages on a hugetlbfs mount instead of /dev/shm"},
		&cli.StringFlag{Name: flagHugetlbfs, Category: CatChannels, Value: "/mnt/hugepages",
			Usage: "hugetlbfs mount holding the channel files with --use-huge-pages"},
		&cli.StringFlag{Name: flagShmDir, Category: CatChannels, Value: "/dev/shm",
			Usage: "directory of the channel files on standard pages"},
		&cli.StringFlag{Name: flagGroup, Category: CatChannels,
			Usage: "make created channel files mode 0660 owned by this group (validator and sidecar as different users); default mode 0600"},
	})
}

// ChannelOptions reads the channel flags.
func ChannelOptions(c *cli.Context) channels.Options {
	return channels.Options{
		Prefix:       c.String(flagPrefix),
		ShmDir:       c.String(flagShmDir),
		HugePages:    c.Bool(flagUseHugePages),
		HugetlbfsDir: c.String(flagHugetlbfs),
		Group:        c.String(flagGroup),
	}
}

// ModelFlags are the model's constants (model.DefaultParams).
func ModelFlags() []cli.Flag {
	d := model.DefaultParams()
	return WithEnv([]cli.Flag{
		&cli.IntFlag{Name: "model-window", Category: CatModel, Value: d.Window,
			Usage: "outcomes a record averages over (a running mean, then an EMA of weight 1/window)"},
		&cli.Float64Flag{Name: "prior-weight", Category: CatModel, Value: d.PriorWeight,
			Usage: "outcomes' worth of weight of a record's prior (the level above: unknown, /16, /24, IP)"},
		&cli.Float64Flag{Name: "unknown-prior", Category: CatModel, Value: d.UnknownPrior,
			Usage: "pay rate presumed of unknown senders before any has been seen"},
		&cli.IntFlag{Name: "min-observations", Category: CatModel, Value: d.MinObservations,
			Usage: "outcomes below which an IP is a newcomer whose outcomes teach the unknown-sender prior"},
		&cli.IntFlag{Name: "max-ips", Category: CatModel, Value: d.MaxIPs,
			Usage: "IP records kept (the least recently updated are evicted)"},
		&cli.IntFlag{Name: "max-prefixes", Category: CatModel, Value: d.MaxPrefixes,
			Usage: "records kept per prefix level (/24 and /48; /16 and /32)"},
		&cli.IntFlag{Name: "max-signers", Category: CatModel, Value: d.MaxSigners,
			Usage: "signer records kept"},
		&cli.Float64Flag{Name: "unpaid-floor", Category: CatModel, Value: d.UnpaidFloor,
			Usage: "least IP factor of a sender whose packets verify but are not paid (0: none)"},
		&cli.Float64Flag{Name: "fail-tolerance", Category: CatModel, Value: d.FailTolerance,
			Usage: "share of failed claims a sender may have before its factor is scaled down (to 0 at one half)"},
		&cli.Float64Flag{Name: "min-score", Category: CatModel, Value: d.MinScore,
			Usage: "floor of every IP and signer factor, so a product of factors never reaches 0"},
		&cli.Float64Flag{Name: "inclusion-bar-quantile", Category: CatModel, Value: d.BarQuantile,
			Usage: "quantile of paid transactions' fee per CU the inclusion bar tracks; an unpaid transaction claiming less was outbid and does not lower its sender's pay rate (0: every unpaid counts)"},
		&cli.Float64Flag{Name: "inclusion-bar-step", Category: CatModel, Value: d.BarStep,
			Usage: "relative step of the inclusion bar per paid transaction"},
	})
}

// ModelParams reads the model flags and validates them.
func ModelParams(c *cli.Context) (model.Params, error) {
	p := model.DefaultParams()
	p.Window = c.Int("model-window")
	p.PriorWeight = c.Float64("prior-weight")
	p.UnknownPrior = c.Float64("unknown-prior")
	p.MinObservations = c.Int("min-observations")
	p.MaxIPs = c.Int("max-ips")
	p.MaxPrefixes = c.Int("max-prefixes")
	p.MaxSigners = c.Int("max-signers")
	p.UnpaidFloor = c.Float64("unpaid-floor")
	p.FailTolerance = c.Float64("fail-tolerance")
	p.MinScore = c.Float64("min-score")
	p.BarQuantile = c.Float64("inclusion-bar-quantile")
	p.BarStep = c.Float64("inclusion-bar-step")
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("model flags: %w", err)
	}
	return p, nil
}

// PendingFlags bound the model's pending claims (model.PendingParams):
// packets sent to sigverify whose outcome has not come yet. Only the
// sidecar daemon keeps them (pack mode gets its transactions verified and
// its outcomes within a batch; replay learns from outcomes alone).
func PendingFlags() []cli.Flag {
	d := model.DefaultPendingParams()
	return WithEnv([]cli.Flag{
		&cli.DurationFlag{Name: "model-pending-ttl", Category: CatModel, Value: d.TTL,
			Usage: "how long a packet sent to sigverify counts as a pending claim of its IP while its outcome has not come"},
		&cli.IntFlag{Name: "model-pending-max", Category: CatModel, Value: d.Max,
			Usage: "pending claims held (a claim is taken back once this many newer ones were made; 0: keep none, a young IP is judged on its failures first)"},
	})
}

// PendingParams reads the pending-claim flags and validates them.
func PendingParams(c *cli.Context) (model.PendingParams, error) {
	p := model.PendingParams{TTL: c.Duration("model-pending-ttl"), Max: c.Int("model-pending-max")}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("model flags: %w", err)
	}
	return p, nil
}

// LogFlags choose the log level and format.
func LogFlags() []cli.Flag {
	return WithEnv([]cli.Flag{
		&cli.StringFlag{Name: flagLogLevel, Category: CatOps, Value: "info",
			Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: flagLogFormat, Category: CatOps, Value: "text",
			Usage: "text or json"},
	})
}

// Logger builds the slog logger the log flags ask for, writing to stderr.
func Logger(c *cli.Context) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.String(flagLogLevel))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String(flagLogLevel))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.String(flagLogFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.String(flagLogFormat))
}
