// Command shoalctl drives a shoal cluster: services, nodes and the
// managers' Raft state. See `shoalctl --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

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
	return ctl.Execute(ctx, ctl.NewApp(), args)
}
