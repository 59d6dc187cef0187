package main

import "github.com/open-policy-agent/opa/v1/ast"

// astRegoVersion is --rego-version as OPA names it.
func (o *policyOptions) astRegoVersion() ast.RegoVersion {
	if o.regoVersion == "v0" {
		return ast.RegoV0
	}
	return ast.RegoV1
}
