package ctl

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
)

func newCompletionCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print the completion script of a shell. Load it in the current shell, or
install it where the shell loads completions from (see the examples).`,
		Example: `  source <(shoalctl completion bash)
  shoalctl completion bash > /etc/bash_completion.d/shoalctl
  shoalctl completion zsh > "${fpath[1]}/_shoalctl"
  shoalctl completion fish > ~/.config/fish/completions/shoalctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      exactlyOne("SHELL (bash, zsh, fish or powershell)"),
		// Completion works without a manager: skip the root's checks.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(w)
			}
			return fieldErr("SHELL", args[0], "want bash, zsh, fish or powershell")
		},
	}
}

// completionTimeout bounds the request a completion makes: a shell waits
// for it at every TAB.
const completionTimeout = 2 * time.Second

// completeNames returns a ValidArgsFunction that offers the names list
// reads from the manager (service, node or stack names). Without a
// manager it offers nothing, and lets the shell fall back to no files.
func (g *globals) completeNames(list func(ctx context.Context, c *client) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		targets, err := parseHosts(g.host)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		cfg, err := tlsFor(targets, g.tlsDir)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		c := newClient(targets, completionTimeout, cfg)
		defer c.Close()
		names, err := list(ctx, c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func serviceNames(ctx context.Context, c *client) ([]string, error) {
	all, err := listServices(ctx, c, true)
	var names []string
	for _, s := range all {
		names = append(names, s.GetService().GetSpec().GetName())
	}
	return names, err
}

func stackNames(ctx context.Context, c *client) ([]string, error) {
	all, err := listServices(ctx, c, true)
	seen := map[string]bool{}
	var names []string
	for _, s := range all {
		if n, ok := s.GetService().GetSpec().GetLabels()[api.LabelStack]; ok && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names, err
}

func nodeNames(ctx context.Context, c *client) ([]string, error) {
	resp, err := listNodes(ctx, c, true)
	var names []string
	for _, n := range resp.GetNodes() {
		names = append(names, n.GetNode().GetHostname())
	}
	return names, err
}
