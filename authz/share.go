package authz

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// This file shares with other front ends (package grpcauthz) what the HTTP
// middleware builds, so that a policy written on the shared fields judges
// both alike.

// UserInput returns input.user as the middleware builds it for id (nil: an
// anonymous caller), holding only what fields reads of it (all when nil).
// preserveToken adds the raw token, as Config.PreserveTokens does.
func UserInput(id *authn.Identity, fields *policy.InputFields, preserveToken bool) (ast.Object, error) {
	b := inputBuilder{preserveToken: preserveToken}
	return b.userObject(id, fields)
}

// NewContext returns a copy of ctx that carries res, for [FromContext]: what
// a front end other than the HTTP middleware uses to hand the caller's
// identity and decision to its handler.
func NewContext(ctx context.Context, res Result) context.Context {
	return withResult(ctx, res)
}
