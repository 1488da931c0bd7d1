// Package ctl is shoalctl: the cobra commands that drive a shoal cluster
// through any manager's Control API. Every command is built by
// NewRootCommand from an App, which carries the process's outside world
// (output streams, clock, environment) so tests can fix all of it.
package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/shoal-sched/shoal/api"
)

// DefaultHost is where shoalctl looks for a manager when neither --host nor
// SHOAL_HOST says otherwise: the control socket a manager opens inside its
// default data directory. A unix socket needs no network and its file
// permissions decide who may drive the cluster, as with docker's socket.
const DefaultHost = "unix:///var/lib/shoal/manager/control.sock"

// HostEnv names the environment variable that replaces DefaultHost.
const HostEnv = "SHOAL_HOST"

// App is what the commands read from and write to outside themselves.
// Fields left nil take the process's own (Sleep, Environ) or none
// (Terminal: no terminal).
type App struct {
	Out    io.Writer
	Err    io.Writer
	Now    func() time.Time
	Getenv func(string) string
	// Environ is the environment compose files are interpolated with.
	Environ func() []string
	// Sleep waits d, or until ctx ends (then it returns ctx.Err()). Tests
	// pass one that moves their clock forward instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Terminal reports whether w is a terminal, where progress is drawn
	// as bars instead of lines.
	Terminal func(w io.Writer) bool
	// Hostname is the name of the host shoalctl runs on: node ps without
	// a node lists the tasks of the node of that name (nil: os.Hostname).
	Hostname func() (string, error)
}

// NewApp returns an App wired to the process.
func NewApp() *App {
	return &App{
		Out: os.Stdout, Err: os.Stderr, Now: time.Now, Getenv: os.Getenv, Environ: os.Environ,
		Sleep: sleep, Terminal: isTerminal,
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *App) sleep(ctx context.Context, d time.Duration) error {
	if a.Sleep == nil {
		return sleep(ctx, d)
	}
	return a.Sleep(ctx, d)
}

func (a *App) terminal(w io.Writer) bool { return a.Terminal != nil && a.Terminal(w) }

func (a *App) environ() []string {
	if a.Environ == nil {
		return nil
	}
	return a.Environ()
}

// globals are the flags every command shares.
type globals struct {
	app     *App
	host    string
	tlsDir  string
	output  string
	timeout time.Duration
	// quiet leaves out the progress of a wait (-q on the commands that wait).
	quiet bool
}

// Output formats.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// Execute runs shoalctl with args and returns the process exit status,
// printing any error as "Error: ..." on app.Err.
func Execute(ctx context.Context, app *App, args []string) int {
	root := NewRootCommand(app)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(app.Err, "Error: %v\n", err)
		return 1
	}
	return 0
}

// NewRootCommand builds the shoalctl command tree.
func NewRootCommand(app *App) *cobra.Command {
	g := &globals{app: app}
	root := &cobra.Command{
		Use:   "shoalctl",
		Short: "Drive a shoal cluster: services, nodes and the managers' Raft state",
		Long: `shoalctl talks to the Control API of any shoal manager; followers forward
writes to the leader. Name several managers in --host (or SHOAL_HOST) and
shoalctl tries the next one when a manager cannot be reached or has no leader.`,
		Example: `  shoalctl --host unix:///var/lib/shoal/manager/control.sock service ls
  SHOAL_HOST=10.0.0.1:4242,10.0.0.2:4242 shoalctl node ls
  shoalctl service create --name web --replicas 3 busybox:1.36 httpd -f`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.check(cmd)
		},
	}
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	// shoalctl's own completion command carries examples, as every
	// command does.
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(flagError)

	host := app.Getenv(HostEnv)
	if host == "" {
		host = DefaultHost
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.host, "host", "H", host,
		"managers to talk to, comma-separated, each unix:///PATH or HOST:PORT; tried in order (env "+HostEnv+")")
	pf.StringVar(&g.tlsDir, "tls-dir", app.Getenv(CertPathEnv),
		"directory with the operator certificate (ca.pem, cert.pem, key.pem) for managers over TCP (env "+CertPathEnv+")")
	pf.StringVarP(&g.output, "output", "o", "", "output format: table, json or yaml (default: table; json for inspect)")
	pf.DurationVar(&g.timeout, "timeout", 15*time.Second,
		"give up on a command after this long (commands that wait for tasks to converge: 3m unless given)")

	root.AddCommand(newServiceCommand(g), newNodeCommand(g), newClusterCommand(g), newStackCommand(g),
		newEventsCommand(g), newCompletionCommand(root))
	root.AddCommand(newNetworkCommand(g))
	root.AddCommand(newSecretCommand(g, api.KindSecret), newSecretCommand(g, api.KindConfig))
	return root
}

func (g *globals) check(cmd *cobra.Command) error {
	switch g.output {
	case "", outputTable, outputJSON, outputYAML:
	default:
		return &api.FieldError{Field: "--output", Value: g.output, Err: errors.New("want table, json or yaml")}
	}
	if g.timeout <= 0 {
		return &api.FieldError{Field: "--timeout", Value: g.timeout.String(), Err: errors.New("must be positive")}
	}
	if _, err := parseHosts(g.host); err != nil {
		return err
	}
	return nil
}

// structured reports whether the command should print JSON or YAML
// rather than a table; def is the command's own default.
func (g *globals) structured(def string) bool {
	if g.output == "" {
		return def == outputJSON
	}
	return g.output == outputJSON || g.output == outputYAML
}

// dial opens the client for one command, bounded by --timeout. The caller
// closes it with the returned function.
func (g *globals) dial(ctx context.Context) (*client, context.Context, func(), error) {
	targets, err := parseHosts(g.host)
	if err != nil {
		return nil, nil, nil, err
	}
	// A zero timeout (events without --timeout) runs until interrupted.
	cancel := context.CancelFunc(func() {})
	if g.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
	}
	cfg, err := tlsFor(targets, g.tlsDir)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	c := newClient(targets, cmp.Or(g.timeout, 15*time.Second), cfg)
	return c, ctx, func() { c.Close(); cancel() }, nil
}

// flagError rewrites pflag's invalid-value errors to the project's
// `--flag "value": cause` form.
func flagError(cmd *cobra.Command, err error) error {
	var ive *pflag.InvalidValueError
	if errors.As(err, &ive) {
		return &api.FieldError{Field: "--" + ive.GetFlag().Name, Value: ive.GetValue(), Err: ive.Unwrap()}
	}
	return fmt.Errorf("%w\nSee '%s --help'", err, cmd.CommandPath())
}

// atLeastOne and exactlyOne check positional arguments, naming what is
// missing (like "SERVICE") instead of cobra's count-only message.
func atLeastOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%s needs at least one %s; see '%s --help'", cmd.CommandPath(), what, cmd.CommandPath())
		}
		return nil
	}
}

func exactlyOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s needs exactly one %s, got %d arguments; see '%s --help'", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// exactlyN checks for exactly the named arguments, naming them.
func exactlyN(n int, what ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s, got %d arguments; see '%s --help'", cmd.CommandPath(), strings.Join(what, " "), len(args), cmd.CommandPath())
		}
		return nil
	}
}

// groupCommand returns a command that only holds subcommands; given
// anything else it fails instead of printing help with status 0.
func groupCommand(use, short, example string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Example: example,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q; see '%s --help'", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}
