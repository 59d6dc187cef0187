package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagGroup is one concern of a command's flags, as --help lists them. A
// name ending in "*" takes every flag with that prefix not listed before.
type flagGroup struct {
	title string
	names []string
}

// serveFlagGroups sorts serve's flags by concern, in the order --help shows
// them, as OPA's and oauth2-proxy's documentation do.
var serveFlagGroups = []flagGroup{
	{"Proxy", []string{"listen", "upstream", "config", "read-header-timeout", "read-timeout", "write-timeout",
		"max-header-bytes", "shutdown-timeout", "gc-heap-floor"}},
	{"Policy", []string{"policy", "watch", "decision", "rego-version", "whole-decision", "non-strict", "deny-builtin",
		"store", "no-authz"}},
	{"Policy input and answers", []string{"input-layout", "body", "max-body-bytes", "skip", "cors-preflight",
		"allow-anonymous", "deny-status", "preserve-tokens"}},
	{"Decision services (no upstream)", []string{"forward-auth", "forward-auth-*", "ext-authz-listen", "authzen", "authzen-*"}},
	{"List endpoints", []string{"compile-api"}},
	{"Remote OPA", []string{"opa-url", "opa-timeout", "remote-first"}},
	{"Bundles", []string{"bundle", "bundle-*"}},
	{"Decision cache", []string{"decision-cache", "decision-cache-key", "decision-cache-ttl"}},
	{"Authentication: API keys and trusted proxies", []string{"api-keys", "api-key-header", "trusted-proxy", "no-authn"}},
	{"Authentication: OpenID Connect", []string{"oidc-well-known", "oidc-client-id", "oidc-client-secret", "oidc-*"}},
	{"Authentication: SAML", []string{"saml-*"}},
	{"Browser sessions", []string{"app-uri", "session-key", "insecure-cookie", "server-side-sessions", "session-store*"}},
	{"Upstream credentials and identity", []string{"forward-credentials"}},
	{"Safe rollouts", []string{"dry-run", "shadow-*"}},
	{"Decision logs", []string{"log-decisions", "decision-log-*"}},
	{"Logs, metrics and profiling", []string{"log-level", "log-format", "access-log", "admin-listen", "admin-pprof"}},
}

// groupFlags sorts fs's flags into groups; flags no group names go last,
// under "Other". Each flag is in one group only.
func groupFlags(fs *pflag.FlagSet, groups []flagGroup) ([]string, []*pflag.FlagSet) {
	taken := map[string]bool{}
	var titles []string
	var sets []*pflag.FlagSet
	add := func(title string, pick func(name string) bool) {
		set := pflag.NewFlagSet(title, pflag.ContinueOnError)
		fs.VisitAll(func(f *pflag.Flag) {
			if !taken[f.Name] && f.Name != "help" && pick(f.Name) {
				taken[f.Name] = true
				set.AddFlag(f)
			}
		})
		if set.HasFlags() {
			titles, sets = append(titles, title), append(sets, set)
		}
	}
	for _, g := range groups {
		for _, n := range g.names {
			if prefix, ok := strings.CutSuffix(n, "*"); ok {
				add(g.title, func(name string) bool { return strings.HasPrefix(name, prefix) })
			} else {
				add(g.title, func(name string) bool { return name == n })
			}
		}
	}
	add("Other", func(string) bool { return true })
	// Merge the sets made for one title (one per name) into one.
	var mt []string
	var ms []*pflag.FlagSet
	for i, t := range titles {
		if len(mt) > 0 && mt[len(mt)-1] == t {
			ms[len(ms)-1].AddFlagSet(sets[i])
			continue
		}
		mt, ms = append(mt, t), append(ms, sets[i])
	}
	return mt, ms
}

// groupedUsage makes cmd's usage list its flags by concern.
func groupedUsage(cmd *cobra.Command, groups []flagGroup) {
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		w := c.OutOrStderr()
		fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
		if c.HasExample() {
			fmt.Fprintf(w, "\nExamples:\n%s\n", c.Example)
		}
		titles, sets := groupFlags(c.LocalFlags(), groups)
		for i, t := range titles {
			// FlagUsages lists a set's flags sorted by name unless told
			// otherwise: keep the order the group names them in.
			sets[i].SortFlags = false
			fmt.Fprintf(w, "\n%s:\n%s", t, sets[i].FlagUsages())
		}
		fmt.Fprintf(w, "\n  -h, --help   help for %s\n", c.Name())
		return nil
	})
}
