package authz

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/pipeline"
)

// abandoned reports whether the client went away (or the server is shutting
// the request down): an evaluation stopped for that is no evaluator error.
func abandoned(r *http.Request) bool { return r.Context().Err() != nil }

// ctxDone is abandoned for the pipeline, which sees the request's context.
func ctxDone(ctx context.Context) bool { return ctx.Err() != nil }

// decisionRequest describes r, made by id, for the pipeline's decision line
// and decision event: the event records the layout and the deny status, so
// that `regoguard check --replay` re-decides it as it was decided.
func (m *Middleware) decisionRequest(r *http.Request, id *authn.Identity) pipeline.Request {
	return pipeline.Request{Identity: id, Attrs: [2]slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path)},
		InputLayout: string(m.input.layout), DenyStatus: m.denyStatus}
}
