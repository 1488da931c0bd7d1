package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func newJoinTokenCommand(g *globals) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "join-token worker|manager",
		Short: "Print the command that joins a worker or a manager, or rotate its token",
		Long: `Print the join token of a worker or a manager, as the command line to run on
the new node's host. The node checks the manager's CA against the digest in
the token before it sends the token, and the managers choose its node ID; the
token's kind decides the node's role.

--rotate replaces the token: the old one is refused for new joins from then
on (with a message that says it was rotated); nodes that joined with it keep
working. Rotate a token that may have leaked.`,
		Example: `  shoalctl cluster join-token worker
  shoalctl cluster join-token manager -q
  shoalctl cluster join-token worker --rotate`,
		Args:      exactlyOne("ROLE (worker or manager)"),
		ValidArgs: []string{pki.RoleWorker, pki.RoleManager},
		RunE: func(cmd *cobra.Command, args []string) error {
			role := args[0]
			if role != pki.RoleWorker && role != pki.RoleManager {
				return &api.FieldError{Field: "ROLE", Value: role, Err: errors.New("want worker or manager")}
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				var toks *shoalpb.JoinTokens
				var err error
				if rotate {
					toks, err = invoke(ctx, c, shoalpb.ControlClient.RotateJoinToken, &shoalpb.RotateJoinTokenRequest{Role: role})
				} else {
					toks, err = invoke(ctx, c, shoalpb.ControlClient.GetJoinTokens, &shoalpb.GetJoinTokensRequest{})
				}
				if err != nil {
					return rpcError("", err)
				}
				if g.structured(outputTable) {
					return g.writeMsg(toks)
				}
				return writeJoinToken(g.app.Out, toks, role, rotate, quiet)
			})
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the token; the old one stops working for new joins")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the token only")
	return cmd
}

func writeJoinToken(w io.Writer, toks *shoalpb.JoinTokens, role string, rotated, quiet bool) error {
	tok, bin := toks.GetWorker(), "shoal-agent"
	if role == pki.RoleManager {
		tok, bin = toks.GetManager(), "shoal-manager"
	}
	if quiet {
		_, err := fmt.Fprintln(w, tok)
		return err
	}
	var b strings.Builder
	if rotated {
		fmt.Fprintf(&b, "Rotated the %s join token: the old one no longer admits new nodes.\n\n", role)
	}
	addrs := toks.GetManagerAddrs()
	join := "MANAGER:4242"
	if len(addrs) > 0 {
		join = addrs[0]
		if role == pki.RoleWorker {
			join = strings.Join(addrs, ",")
		}
	}
	fmt.Fprintf(&b, "To add a %s to this cluster, run on its host:\n\n    %s --token %s --join %s\n\n", role, bin, tok, join)
	_, err := io.WriteString(w, b.String())
	return err
}

func newOperatorCertCommand(g *globals) *cobra.Command {
	var out, name string
	cmd := &cobra.Command{
		Use:   "operator-cert --out DIR",
		Short: "Get a short-lived operator certificate for shoalctl on another host",
		Long: fmt.Sprintf(`Get an operator certificate (valid %s) and write it to DIR as ca.pem, cert.pem
and key.pem (0600), the layout --tls-dir and %s read (like DOCKER_CERT_PATH).
The key is made here and never leaves this host. Run it where shoalctl
reaches a manager already (its control socket, as root), then copy DIR to
the laptop and point shoalctl at a manager's HOST:PORT with --tls-dir.`, pki.OperatorCertExpiry, CertPathEnv),
		Example: `  shoalctl cluster operator-cert --out ~/.shoal/certs
  SHOAL_CERT_PATH=~/.shoal/certs shoalctl --host 10.0.0.1:4242 node ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &api.FieldError{Field: "--out", Value: out, Err: errors.New("give the directory to write the certificate to")}
			}
			keyPEM, csr, err := pki.NewKeyAndCSR()
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.IssueOperatorCertificate, &shoalpb.IssueOperatorCertificateRequest{Csr: csr, Name: name})
				if err != nil {
					return rpcError("", err)
				}
				creds, err := pki.NewCredentials(resp.GetCertificate(), keyPEM, resp.GetTrustedRoots())
				if err != nil {
					return err
				}
				dir, err := filepath.Abs(out)
				if err != nil {
					return err
				}
				if err := creds.SaveTo(dir); err != nil {
					return err
				}
				_, err = fmt.Fprintf(g.app.Out, "Wrote an operator certificate for %q, valid until %s, to %s.\nUse it with: %s=%s shoalctl --host MANAGER:4242 ...\n",
					creds.Identity().NodeID, resp.GetNotAfter().AsTime().UTC().Format(time.RFC3339), dir, CertPathEnv, dir)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write ca.pem, cert.pem and key.pem to")
	cmd.Flags().StringVar(&name, "name", "", "name in the certificate, shown in the managers' logs (default operator)")
	return cmd
}
