package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// `secret` and `config` are one set of commands over one kind of object:
// only what is shown differs (a secret's data never comes back).

func secretSubject(kind string) func(string) string {
	return func(name string) string { return fmt.Sprintf("%s %q", kind, name) }
}

func newSecretCommand(g *globals, kind string) *cobra.Command {
	short := "Create, list, inspect and remove secrets (mounted at /run/secrets/NAME)"
	example := `  printf s3cret | shoalctl secret create db_password -
  shoalctl secret ls
  shoalctl service create --name db --secret db_password \
    -e POSTGRES_PASSWORD_FILE=/run/secrets/db_password postgres:16`
	if kind == api.KindConfig {
		short = "Create, list, inspect and remove configs (mounted at their target, /NAME by default)"
		example = `  shoalctl config create nginx_conf ./nginx.conf
  shoalctl config ls
  shoalctl service create --name web --config source=nginx_conf,target=/etc/nginx/nginx.conf nginx`
	}
	cmd := groupCommand(kind, short, example)
	cmd.AddCommand(newSecretCreateCommand(g, kind), newSecretLsCommand(g, kind), newSecretInspectCommand(g, kind), newSecretRmCommand(g, kind))
	return cmd
}

// readSecretData reads FILE, or standard input for "-", refusing more than
// the limit before anything is sent.
func readSecretData(kind, file string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("%s file: %w", kind, err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, api.MaxSecretBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s file %q: %w", kind, file, err)
	}
	return data, nil
}

func newSecretCreateCommand(g *globals, kind string) *cobra.Command {
	var labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NAME FILE|-",
		Short: "Create a " + kind + " from a file or standard input",
		Long: fmt.Sprintf(`Create a %[1]s from FILE, or from standard input with "-". Its data is at most
500 KiB and cannot change afterwards (only its labels can): to rotate it, create
another %[1]s and move the services over (service update --%[1]s-rm OLD --%[1]s-add NEW).`, kind),
		Example: fmt.Sprintf(`  printf s3cret | shoalctl %[1]s create --label env=prod db_password -
  shoalctl %[1]s create site_key ./site.key`, kind),
		Args: exactlyN(2, "NAME", "FILE|-"),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := addLabels(nil, "--label", labels)
			if err != nil {
				return err
			}
			data, err := readSecretData(kind, args[1], cmd.InOrStdin())
			if err != nil {
				return err
			}
			spec := api.SecretSpec{Name: args[0], Labels: l, Data: data}
			if err := api.ValidateSecretSpec(kind, &spec); err != nil {
				var errs []error
				for _, e := range unjoin(err) {
					errs = append(errs, asFlag(e, map[string]string{"spec.name": "NAME", "spec.labels": "--label", "spec.data": "FILE"}))
				}
				return errors.Join(errs...)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.CreateSecret, &shoalpb.CreateSecretRequest{
					Kind: kind, Spec: &shoalpb.SecretSpec{Name: spec.Name, Labels: spec.Labels, Data: spec.Data},
				})
				if err != nil {
					return rpcError(secretSubject(kind)(args[0]), err)
				}
				if g.structured(outputTable) {
					return g.writeMsg(resp)
				}
				_, err = fmt.Fprintln(g.app.Out, resp.GetSecret().GetId())
				return err
			})
		},
	}
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, kind+" label KEY=VALUE (repeatable)")
	return cmd
}

func newSecretLsCommand(g *globals, kind string) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List " + kind + "s",
		Example: fmt.Sprintf("  shoalctl %[1]s ls\n  shoalctl %[1]s ls -q\n  shoalctl %[1]s ls --format '{{.Name}}'", kind),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.ListSecrets, &shoalpb.ListSecretsRequest{Kind: kind, Stale: rf.stale})
				if err != nil {
					return rpcError("", err)
				}
				switch {
				case rf.quiet:
					var ids []string
					for _, s := range resp.GetSecrets() {
						ids = append(ids, s.GetId())
					}
					return printIDs(g.app.Out, ids, rf.noTrunc)
				case g.structured(outputTable):
					return writeMsgList(g, resp.GetSecrets())
				}
				w, err := rf.out(g.app.Out)
				if err != nil {
					return err
				}
				return writeSecretTable(w, kind, resp.GetSecrets(), g.app.Now(), rf.noTrunc)
			})
		},
	}
	rf.register(cmd, true)
	cmd.Flags().BoolVarP(&rf.quiet, "quiet", "q", false, "print only IDs, one a line")
	return cmd
}

// writeSecretTable has docker's columns: a secret's DRIVER (empty: the
// store's own) and none for configs.
func writeSecretTable(w io.Writer, kind string, list []*shoalpb.Secret, now time.Time, noTrunc bool) error {
	headers := []string{"ID", "NAME", "CREATED", "UPDATED"}
	if kind == api.KindSecret {
		headers = []string{"ID", "NAME", "DRIVER", "CREATED", "UPDATED"}
	}
	t := newTable(w, headers...)
	for _, pb := range list {
		s := shoalpb.ToSecret(pb)
		row := []string{shortID(s.ID, noTrunc), s.Spec.Name}
		if kind == api.KindSecret {
			row = append(row, "")
		}
		t.row(append(row, ago(now, s.CreatedAt), ago(now, s.UpdatedAt))...)
	}
	return t.flush()
}

func newSecretInspectCommand(g *globals, kind string) *cobra.Command {
	var rf readFlags
	var pretty bool
	long := "Show secrets (JSON by default, like docker): never their data. SECRET is a name, an ID or a unique ID prefix."
	if kind == api.KindConfig {
		long = "Show configs (JSON by default, like docker), with their data. CONFIG is a name, an ID or a unique ID prefix."
	}
	upper := map[string]string{api.KindSecret: "SECRET", api.KindConfig: "CONFIG"}[kind]
	cmd := &cobra.Command{
		Use:     "inspect " + upper + " [" + upper + "...]",
		Short:   "Show " + kind + "s in full",
		Long:    long,
		Example: fmt.Sprintf("  shoalctl %[1]s inspect db_password\n  shoalctl %[1]s inspect --pretty db_password", kind),
		Args:    atLeastOne(upper),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				get := func(name string) (*shoalpb.Secret, error) {
					return invoke(ctx, c, shoalpb.ControlClient.GetSecret, &shoalpb.GetSecretRequest{Kind: kind, Secret: name, Stale: rf.stale})
				}
				return inspectEach(g, rf, args, pretty, secretSubject(kind), get, writeSecretsPretty)
			})
		},
	}
	rf.register(cmd, false)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary instead of JSON (same as --output table)")
	return cmd
}

func writeSecretsPretty(w io.Writer, list []*shoalpb.Secret) error {
	for i, pb := range list {
		if i > 0 {
			fmt.Fprintln(w)
		}
		x := shoalpb.ToSecret(pb)
		s := newSection(w)
		s.line(0, "ID", x.ID)
		s.line(0, "Name", x.Spec.Name)
		s.line(0, "Labels", joinMap(x.Spec.Labels))
		if x.Kind == api.KindSecret {
			s.line(0, "Driver", "")
		}
		s.line(0, "Created at", x.CreatedAt.UTC().Format("2006-01-02 15:04:05.999999999 -0700 MST"))
		s.line(0, "Updated at", x.UpdatedAt.UTC().Format("2006-01-02 15:04:05.999999999 -0700 MST"))
		if err := s.flush(); err != nil {
			return err
		}
		if x.Kind == api.KindConfig {
			// docker config inspect --pretty ends with the data.
			if _, err := fmt.Fprintf(w, "Data:\n%s\n", x.Spec.Data); err != nil {
				return err
			}
		}
	}
	return nil
}

func newSecretRmCommand(g *globals, kind string) *cobra.Command {
	upper := map[string]string{api.KindSecret: "SECRET", api.KindConfig: "CONFIG"}[kind]
	return &cobra.Command{
		Use:     "rm " + upper + " [" + upper + "...]",
		Aliases: []string{"remove"},
		Short:   "Remove " + kind + "s no service uses",
		Long: fmt.Sprintf(`Remove %[1]ss. One a service uses is refused, naming the services: take it
off them first (service update --%[1]s-rm NAME) or remove them.`, kind),
		Example: fmt.Sprintf("  shoalctl %s rm db_password", kind),
		Args:    atLeastOne(upper),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.removeEach(args, secretSubject(kind), func(name string) (uint64, error) {
					resp, err := invoke(ctx, c, shoalpb.ControlClient.RemoveSecret, &shoalpb.RemoveSecretRequest{Kind: kind, Secret: name})
					return resp.GetIndex(), err
				})
			})
		},
	}
}
