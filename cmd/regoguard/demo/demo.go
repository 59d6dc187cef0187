// Package demo holds the policy and API keys that `regoguard` uses when it is
// started with no configuration, so the README's first command shows the
// whole product with no setup.
package demo

import (
	"embed"

	"github.com/regoguard/regoguard/policy"
)

//go:embed *.rego
var files embed.FS

//go:embed cases.yaml
var cases []byte

// Policy returns the embedded demo policy.
func Policy() (*policy.Policy, error) { return policy.LoadFS(files, ".") }

// Cases returns the demo's cases, in the format of `regoguard check`: what
// `regoguard bench` measures with no argument.
func Cases() []byte { return cases }
