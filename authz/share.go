package authz

import (
	"context"
)

// NewContext returns a copy of ctx that carries res, for [FromContext]: what
// a front end other than the HTTP middleware uses to hand the caller's
// identity and decision to its handler.
func NewContext(ctx context.Context, res Result) context.Context {
	return withResult(ctx, res)
}
