// Command regoguard protects HTTP services with Open Policy Agent policies
// evaluated in-process, with no network hop to an OPA server per request.
//
//	regoguard serve   a reverse proxy (sidecar) that authenticates and
//	                  authorizes every request before it reaches the upstream;
//	                  with no flags, a demo on an embedded policy
//	regoguard check   offline policy tests: expected decisions, Rego unit
//	                  tests, HAR replays and policy diffs
//	regoguard bench   decision latency and throughput, in-process and remote
//	regoguard filter  a rule compiled into an SQL WHERE clause or UCAST for a
//	                  caller, as OPA's Compile API answers
//	regoguard version the version, VCS revision, and Go and OPA versions
//
// Every flag can also be set with a REGOGUARD_* environment variable or a
// key in the YAML file given by --config; flags win over the environment,
// the environment over the file. Run "regoguard help COMMAND" for details.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		printError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "regoguard",
		Short: "Protect HTTP services with OPA policies evaluated in-process",
		Long: `regoguard authenticates HTTP requests (OIDC, API keys, trusted proxy headers) and
authorizes them with Open Policy Agent policies compiled once and evaluated
in-process: no network hop to an OPA server per request.

Flags can also be set as REGOGUARD_<FLAG> environment variables (for example
REGOGUARD_LISTEN) or as keys of the YAML file given by --config.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	// A root that runs (help) and checks its arguments makes an unknown
	// command a usage error, exit 2, instead of cobra's plain error.
	root.Args = unknownCommand
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.Version = currentBuild().String()
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newServeCommand(), newCheckCommand(), newBenchCommand(), newFilterCommand(), newVersionCommand())
	for _, c := range root.Commands() {
		if args := c.Args; args != nil {
			// cobra's argument errors are usage errors too.
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return configError{err}
				}
				return nil
			}
		}
	}
	return root
}

// withLayers makes a command read its unset flags from the environment and
// the config file before it runs.
func withLayers(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().String("config", "", "YAML file of flag values (keys are flag names)")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := applyLayers(c, os.Environ()); err != nil {
			return err
		}
		return run(c, args)
	}
	return cmd
}
