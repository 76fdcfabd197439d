package cliflags

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestWithEnv(t *testing.T) {
	own := &cli.StringFlag{Name: "sim-config", EnvVars: []string{"QOS_SIM_CONFIG_FILE"}}
	flags := WithEnv([]cli.Flag{
		&cli.Uint64Flag{Name: "target-pps"},
		&cli.BoolFlag{Name: "db"},
		&cli.DurationFlag{Name: "queue-ttl"},
		own,
	})
	want := [][]string{{"QOS_TARGET_PPS"}, {"QOS_DB"}, {"QOS_QUEUE_TTL"}, {"QOS_SIM_CONFIG_FILE"}}
	for i, f := range flags {
		if got := f.(cli.DocGenerationFlag).GetEnvVars(); !slices.Equal(got, want[i]) {
			t.Errorf("%s: env %v, want %v", f.Names()[0], got, want[i])
		}
	}
}

// TestSharedFlagsHaveEnv: every shared flag reads QOS_ and its name.
func TestSharedFlagsHaveEnv(t *testing.T) {
	for _, list := range [][]cli.Flag{ChannelFlags(), ModelFlags(), PendingFlags(), AdmissionFlags(), LogFlags()} {
		for _, f := range list {
			name := f.Names()[0]
			if got := f.(cli.DocGenerationFlag).GetEnvVars(); !slices.Equal(got, Env(name)) {
				t.Errorf("--%s: env %v, want %v", name, got, Env(name))
			}
		}
	}
}

func TestWithEnvUnknownTypePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an unknown flag type")
		}
	}()
	WithEnv([]cli.Flag{&cli.StringSliceFlag{Name: "x"}})
}
