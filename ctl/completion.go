package ctl

import (
	"github.com/spf13/cobra"
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
