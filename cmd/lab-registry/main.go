// Command lab-registry serves a busybox image, built from the host's static
// busybox, on a plain HTTP registry until it is killed. Labs run it inside
// a lab host so that agents have an image to pull.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-sched/shoal/deploy/labregistry"
)

func main() {
	var cfg labregistry.Config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:5000", "host:port to serve the registry on")
	flag.StringVar(&cfg.Busybox, "busybox", labregistry.DefaultBusybox, "path of the static busybox binary to put in the image")
	flag.StringVar(&cfg.Repository, "repository", labregistry.DefaultRepository, "repository:tag to serve the image as")
	flag.Func("alias", "another repository:tag to serve the same image as (repeatable), e.g. library/busybox:latest", func(v string) error {
		cfg.Aliases = append(cfg.Aliases, v)
		return nil
	})
	flag.Parse()
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "lab-registry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg labregistry.Config) error {
	return labregistry.Run(ctx, cfg)
}
