// Command shoalctl drives a shoal cluster: services, stacks, nodes and the
// managers' Raft state. See `shoalctl --help`.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/shoal-sched/shoal/ctl"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run builds the root command and runs it until it ends or a signal
// cancels it; it returns the exit status.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The compose library logs its warnings through logrus; shoalctl
	// prints them itself, as "Warning: ..." lines of stack deploy.
	logrus.SetOutput(io.Discard)
	return ctl.Execute(ctx, ctl.NewApp(), args)
}
