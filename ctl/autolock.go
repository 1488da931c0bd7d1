package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/internal/seal"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func newClusterUnlockCommand(g *globals) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "unlock [--key-file FILE]",
		Short: "Unlock a manager restarted with autolock on",
		Long: `Give a locked manager the cluster's unlock key. With autolock on, a manager
that restarts cannot read its Raft log until it is unlocked: it answers every
call with "locked: run shoalctl cluster unlock". Run this on the manager's
host, through its control socket (the default --host): the key is read from
--key-file, or from standard input.`,
		Example: `  shoalctl cluster unlock < unlock-key.txt
  shoalctl cluster unlock --key-file /root/shoal-unlock-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			text, err := readUnlockKey(keyFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if _, err := seal.ParseUnlockKey(text); err != nil {
				return fmt.Errorf("unlock key: %w", err)
			}
			req := &shoalpb.UnlockClusterRequest{UnlockKey: text}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				if _, err := invoke(ctx, c, shoalpb.ControlClient.UnlockCluster, req); err != nil {
					return rpcError("", err)
				}
				_, err := fmt.Fprintln(g.app.Out, "unlocked")
				return err
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "read the unlock key from FILE (default: standard input)")
	return cmd
}

// readUnlockKey reads the first line of the key file, or of in.
func readUnlockKey(file string, in io.Reader) (string, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--key-file: %w", err)
		}
		defer f.Close()
		in = f
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the unlock key: %w", err)
	}
	if strings.TrimSpace(line) == "" {
		return "", errors.New("no unlock key given: pipe it on standard input or give --key-file")
	}
	return strings.TrimSpace(line), nil
}

func newClusterUnlockKeyCommand(g *globals) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "unlock-key [--rotate] [-q]",
		Short: "Show or rotate the unlock key of an autolocked cluster",
		Long: `Show the cluster's unlock key (autolock must be on: shoalctl cluster update
--autolock=true). --rotate replaces it: every manager re-wraps its data key
with the new one, and a manager restarted from then on needs the new key.
Keep the old key until every manager has been seen running since the
rotation. -q prints the key alone.`,
		Example: `  shoalctl cluster unlock-key
  shoalctl cluster unlock-key --rotate -q > unlock-key.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &shoalpb.GetUnlockKeyRequest{Rotate: rotate}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.GetUnlockKey, req)
				if err != nil {
					return rpcError("", err)
				}
				if quiet {
					_, err = fmt.Fprintln(g.app.Out, resp.GetUnlockKey())
					return err
				}
				if g.structured(outputTable) {
					return g.writeMsg(resp)
				}
				what := "The unlock key"
				if rotate {
					what = "The new unlock key"
				}
				_, err = fmt.Fprintf(g.app.Out, "%s is:\n\n    %s\n\nA manager restarted with autolock on needs it: shoalctl cluster unlock.\n", what, resp.GetUnlockKey())
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the unlock key")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the key alone")
	return cmd
}
