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

// Policy returns the embedded demo policy.
func Policy() (*policy.Policy, error) { return policy.LoadFS(files, ".") }
