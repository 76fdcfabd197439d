// Command qos-cli is the operator's tool for the qos sidecar: it creates,
// inspects and removes the shared-memory channels, and hosts the offline
// commands (replay, simulate, demo, explain) that other files of this
// package add.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// newApp builds the command-line application. Each command is defined in
// its own file as a function returning *cli.Command; to add one, append
// it to commands.
func newApp(stdout, stderr io.Writer) *cli.App {
	commands := []*cli.Command{
		initCommand(),
		inspectCommand(),
		removeCommand(),
		demoCommand(),
		simulateCommand(),
		migrateCommand(),
		dbCommand(),
		replayCommand(),
		explainCommand(),
		topCommand(),
		agaveSimCommand(),
	}
	for _, c := range commands {
		if c.OnUsageError == nil {
			c.OnUsageError = usageError
		}
	}
	return &cli.App{
		Name:  "qos-cli",
		Usage: "manage the qos sidecar's shared-memory channels and run its offline tools",
		Description: "qos-cli talks to the same channel files as the validator and the qos daemon.\n" +
			"Every option can also be set with the QOS_ environment variable shown in its help.",
		Commands:        commands,
		Writer:          stdout,
		ErrWriter:       stderr,
		OnUsageError:    usageError,
		HideHelpCommand: true,
		// run prints errors and sets the exit code; never exit from inside.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// usageError turns a flag-parsing error into one line that points at the
// help, instead of printing the whole help text.
func usageError(c *cli.Context, err error, isSubcommand bool) error {
	name := c.App.Name
	if c.Command != nil && c.Command.Name != "" {
		name += " " + c.Command.Name
	}
	return fmt.Errorf("%w (see %s --help)", err, name)
}

// run executes the application with args and returns the exit code: 0 on
// success, 1 after printing the error as one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	if err := app.RunContext(ctx, args); err != nil {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
		fmt.Fprintf(stderr, "qos-cli: %s\n", msg)
		return 1
	}
	return 0
}
