package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Root rotation waits longer than task convergence by default: every node
// notices at its next certificate status check (a minute apart) and then
// renews.
const (
	defaultRotateTimeout = 10 * time.Minute
	rotatePollInterval   = time.Second
)

func newClusterCACommand(g *globals) *cobra.Command {
	var rotate, detach bool
	cmd := &cobra.Command{
		Use:   "ca [--rotate]",
		Short: "Show the cluster's root CA, or rotate it",
		Long: `Show the digest of the cluster's root CA (the middle part of every join
token) and any rotation in progress.

--rotate replaces the root: a new root, cross-signed by the old one, signs
every certificate from then on and both roots are trusted; every node is
told to renew at its next certificate status check (within about a minute)
and does, without dropping a connection. Once every manager and every node
that is not down holds a certificate of the new root, the leader drops the
old root and makes new join tokens. shoalctl shows the progress until then
(bounded by --timeout, default 10m) unless --detach is given. A node that was
down during the rotation holds a certificate of the old root and must join
again with a token.`,
		Example: `  shoalctl cluster ca
  shoalctl cluster ca --rotate
  shoalctl cluster ca --rotate --detach`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rotate && !detach && !cmd.Flags().Changed("timeout") {
				g.timeout = defaultRotateTimeout
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				var st *shoalpb.RootCAStatus
				var err error
				if rotate {
					st, err = invoke(ctx, c, shoalpb.ControlClient.RotateRootCA, &shoalpb.RotateRootCARequest{})
				} else {
					st, err = invoke(ctx, c, shoalpb.ControlClient.GetRootCAStatus, &shoalpb.GetRootCAStatusRequest{})
				}
				if err != nil {
					return rpcError("", err)
				}
				if rotate && !detach {
					if st, err = g.followRotation(ctx, c, st); err != nil {
						return err
					}
				}
				if g.structured(outputTable) {
					return g.writeMsg(st)
				}
				return writeRootStatus(g.app.Out, st)
			})
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the root CA (new join tokens at the end)")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "with --rotate: return once the rotation has started")
	return cmd
}

// followRotation shows a rotation's progress on stderr until it ends.
func (g *globals) followRotation(ctx context.Context, c *client, st *shoalpb.RootCAStatus) (*shoalpb.RootCAStatus, error) {
	last := ""
	for st.GetRotating() {
		line := fmt.Sprintf("root CA rotation: %d of %d nodes and managers renewed", st.GetRenewed(), st.GetTotal())
		if p := st.GetPending(); len(p) > 0 {
			line += " (waiting for " + strings.Join(shortIDs(p), ", ") + ")"
		}
		if line != last {
			fmt.Fprintln(g.app.Err, line)
			last = line
		}
		if err := g.app.sleep(ctx, rotatePollInterval); err != nil {
			return st, fmt.Errorf("the root rotation goes on without shoalctl (%d of %d renewed); follow it with shoalctl cluster ca: %w",
				st.GetRenewed(), st.GetTotal(), err)
		}
		next, err := invoke(ctx, c, shoalpb.ControlClient.GetRootCAStatus, &shoalpb.GetRootCAStatusRequest{})
		if err != nil {
			return st, rpcError("", err)
		}
		st = next
	}
	fmt.Fprintln(g.app.Err, "root CA rotation done: the old root is no longer trusted; new join tokens: shoalctl cluster join-token worker|manager")
	return st, nil
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(len(id), 12)]
	}
	return out
}

func writeRootStatus(w io.Writer, st *shoalpb.RootCAStatus) error {
	s := newSection(w)
	s.line(0, "Root CA digest", st.GetRootDigest())
	if st.GetRotating() {
		s.line(0, "Rotating to", st.GetNewRootDigest())
		s.line(0, "Started", st.GetStartedAt().AsTime().UTC().Format(time.RFC3339))
		s.line(0, "Renewed", fmt.Sprintf("%d of %d", st.GetRenewed(), st.GetTotal()))
	}
	return s.flush()
}
