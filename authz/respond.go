package authz

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/extauthz"
	"github.com/regoguard/regoguard/policy"
)

// The codes of a [Refusal]: stable, machine-readable words, sent as the
// "error" field of the default JSON body.
const (
	// CodeBadRequest (400): the request cannot be judged as sent: a path
	// not in canonical form, a body the policy reads that is not valid
	// JSON, an enricher's ErrBadRequest.
	CodeBadRequest = "bad_request"
	// CodeUnauthorized (401): no credential where one is needed, or an
	// invalid one. The response carries WWW-Authenticate.
	CodeUnauthorized = "unauthorized"
	// CodeForbidden (403, or the status the policy gives): the policy
	// refused the request.
	CodeForbidden = "forbidden"
	// CodeBodyTooLarge (413): the body the input needs is larger than
	// Config.MaxBodyBytes.
	CodeBodyTooLarge = "body_too_large"
	// CodeUnsupportedMediaType (415): the policy reads the body, and the
	// body is not unambiguously JSON (no or another Content-Type, a charset
	// other than UTF-8, a Content-Encoding).
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodePolicyUnavailable (503): no decision could be made (no policy
	// loaded, an evaluation error, a remote OPA that does not answer) or
	// the input could not be built. The request is refused: the middleware
	// fails closed.
	CodePolicyUnavailable = "policy_unavailable"
	// CodeAuthenticationUnavailable (503): the credential could not be
	// checked because the identity provider cannot be reached
	// (authn.ErrUnavailable); it is neither accepted nor called invalid.
	CodeAuthenticationUnavailable = "authentication_unavailable"
)

// Refusal describes a request the middleware does not let through.
type Refusal struct {
	// Status is the HTTP status: 400, 401, 403 (or the policy's), 413, 415, 503.
	Status int
	// Code is one of the Code constants, such as [CodeForbidden].
	Code string
	// Message is safe to show to the caller: it holds no credential and no
	// internal error.
	Message string
	// Identity is the caller, when known.
	Identity *authn.Identity
	// Decision is the policy's decision, when there was one.
	Decision *policy.Decision
	// Err is the underlying error, for logs; never shown to the caller.
	Err error
}

// errorBody is the default JSON error body.
type errorBody struct {
	Error      string `json:"error"`
	Message    string `json:"message,omitempty"`
	DecisionID string `json:"decision_id,omitempty"`
}

func (m *Middleware) refuse(w http.ResponseWriter, r *http.Request, ref Refusal) {
	// A failure is logged once, where its context is: an evaluation that
	// failed has its decision line (with the decision ID, revision and
	// user) from record; only failures before any evaluation are logged
	// here.
	if ref.Status == http.StatusServiceUnavailable && ref.Decision == nil && !abandoned(r) {
		m.logger.ErrorContext(r.Context(), "request refused: no decision", "error", ref.Err, "path", r.URL.Path)
	}
	// A 401 must carry a challenge (RFC 9110, 15.5.2), also when it is a
	// deny answered with 401 (DenyStatus 401, as fastapi-opa answered, or
	// the policy's status): the policy's own header wins.
	if ref.Status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate(nil))
	}
	if m.cfg.OnRefuse != nil {
		m.cfg.OnRefuse(w, r, ref)
		return
	}
	if m.input.layout == LayoutEnvoy && ref.Code == CodeForbidden && ref.Decision != nil {
		writeEnvoyDenied(w, ref)
		return
	}
	body := errorBody{Error: ref.Code, Message: ref.Message}
	if ref.Decision != nil {
		body.DecisionID = ref.Decision.ID
	}
	writeJSON(w, ref.Status, body)
}

// writeEnvoyDenied answers a refusal of the policy as opa-envoy-plugin
// does: the decision's http_status (else the refusal's status), headers and
// body, as the policy wrote it. The decision ID is in X-Decision-Id.
func writeEnvoyDenied(w http.ResponseWriter, ref Refusal) {
	res, _ := extauthz.ReadResult(*ref.Decision) // the engine's parser read it already
	for k, vs := range res.Headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("X-Decision-Id", ref.Decision.ID)
	if res.HasBody && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(ref.Status)
	_, _ = io.WriteString(w, res.Body)
}

// challenge answers a request that carries no valid credential: a browser
// is sent to log in when the authenticator can do that, anyone else gets
// 401 with WWW-Authenticate.
func (m *Middleware) challenge(w http.ResponseWriter, r *http.Request, authErr error) {
	if authErr == nil {
		if ch, ok := m.auth.(authn.Challenger); ok && ch.Challenge(w, r) {
			return
		}
	}
	w.Header().Set("WWW-Authenticate", wwwAuthenticate(authErr))
	msg := "authentication required"
	if authErr != nil {
		msg = "invalid credentials"
	}
	m.refuse(w, r, Refusal{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg, Err: authErr})
}

// wwwAuthenticate is the authenticator's own challenge when its error
// carries one (an authn.CredentialError), a bearer challenge otherwise.
func wwwAuthenticate(err error) string {
	if err == nil {
		return `Bearer realm="regoguard"`
	}
	if v := authn.WWWAuthenticate(err); v != authn.DefaultChallenge {
		return v
	}
	return `Bearer realm="regoguard", error="invalid_token"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Result is what the middleware learnt about a request it let through.
type Result struct {
	// Identity is the caller; nil for an anonymous caller.
	Identity *authn.Identity
	// Decision is the policy's decision; zero when authorization is off.
	Decision policy.Decision
}

type resultKey struct{}

func withResult(ctx context.Context, res Result) context.Context {
	noteUser(ctx, res.Identity)
	return context.WithValue(ctx, resultKey{}, res)
}

// FromContext returns the identity and decision of the request whose
// context ctx is, and false when the middleware did not handle it (or
// exempted it).
func FromContext(ctx context.Context) (Result, bool) {
	res, ok := ctx.Value(resultKey{}).(Result)
	return res, ok
}
