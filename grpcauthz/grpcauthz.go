// Package grpcauthz authorizes gRPC calls as package authz authorizes HTTP
// requests: the same authenticators, the same evaluators (the in-process
// policy.Engine, a remote OPA, a fallback or a cache of them) and the same
// fail-closed rules, as unary and stream server interceptors. No network hop
// per call unless the evaluator is a remote OPA.
//
// It lives apart from authz so that HTTP-only users never link gRPC.
//
// # Answers
//
// For every call that is not exempt, in this order:
//
//   - InvalidArgument: the method name is not in canonical form
//     (/package.Service/Method).
//   - Unauthenticated: no credential (unless Config.AllowAnonymous), or a
//     credential that is invalid, repeated, spelt in a way that could be read
//     as another, or present with no authenticator configured for it; and an
//     anonymous call the policy denies.
//   - ResourceExhausted: the policy reads the request message and it is
//     larger than Config.MaxMessageBytes (Unimplemented when it is not a
//     protocol buffer).
//   - PermissionDenied: the policy denies; the message is its reason.
//     A refusal that follows a decision carries its ID in a
//     google.rpc.ErrorInfo detail (see ErrorDomain).
//   - Unavailable: no decision could be made in Config.Timeout (evaluator
//     error, identity provider unreachable): the call is refused.
//
// A stream is judged before its first message is read: a refused stream
// never reaches its handler. The handler of an allowed call reads the
// caller and the decision with authz.FromContext, as an HTTP handler does.
//
// # Credentials
//
// Every credential present is verified, or the call is refused; none falls
// through to a weaker method or to an anonymous call:
//
//   - "authorization: Bearer <token>" metadata, verified by Config.Tokens
//     (an *authn.Bearer: go-oidc against the issuer's keys).
//   - an API key in the metadata key that Config.APIKeys reads (its header,
//     lower-cased; default x-api-key),
//     checked by Config.APIKeys (an *authn.APIKeys).
//   - with Config.ClientCertificates, the peer's TLS client certificate,
//     trusted only when the TLS handshake verified its chain.
//
// When several are present all must verify; the identity is the token's,
// else the API key's, else the certificate's.
//
// # Input
//
// The policy input of a call:
//
//	{"service": "pkg.Svc", "method": "/pkg.Svc/Call", "stream": false,
//	 "metadata": {"x-tenant": "acme", ...},
//	 "peer": {"address": "10.0.0.7:50312", "certificate": {...}},
//	 "user": {"authenticated", "method", "sub", "claims"},
//	 "message": {...}}
//
// method is the full method name, which can never be mistaken for an HTTP
// verb, so one policy can judge HTTP requests and gRPC calls on the fields
// they share (user). metadata leaves out credentials, proxy identity claims
// (x-forwarded-user, ...) and secret-looking keys (x-auth-token,
// x-session-id, ...) in any spelling, and binary (-bin) keys, and joins
// repeated values with ", " as HTTP headers are. The handler's incoming
// metadata loses the identity claims too, and the credentials the
// interceptors verified unless Config.ForwardCredentials is set. message is the
// request message of a unary call as protojson (proto field names, unset
// fields with their zero values); a stream is judged before its first
// message and has none, so write rules on input.message so that its absence
// denies. With the in-process engine only the fields the policy reads are
// built: a call whose policy never reads input.message never marshals it.
package grpcauthz

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/pipeline"
	"github.com/regoguard/regoguard/policy"
)

// MethodMTLS is the user.method of an identity established by a TLS client
// certificate.
const MethodMTLS = "mtls"

// DefaultAPIKeyMetadata is the metadata key that carries an API key when
// Config.APIKeys declares no header: authn.DefaultAPIKeyHeader as gRPC
// spells it.
const DefaultAPIKeyMetadata = "x-api-key"

// DefaultMaxMessageBytes bounds the request message put into the input
// when Config.MaxMessageBytes sets no limit.
const DefaultMaxMessageBytes = 64 << 10

// DefaultTimeout bounds authentication and decision of one call when
// Config.Timeout sets no limit.
const DefaultTimeout = 5 * time.Second

// HealthMethods are the full method names of the standard health service
// (grpc.health.v1), for Config.Exempt.
var HealthMethods = []string{
	"/grpc.health.v1.Health/Check",
	"/grpc.health.v1.Health/List",
	"/grpc.health.v1.Health/Watch",
}

// ReflectionMethods are the full method names of the server reflection
// service (v1 and v1alpha), for Config.Exempt.
var ReflectionMethods = []string{
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}

// TokenVerifier verifies a raw bearer token and returns the identity it
// carries. *authn.Bearer is one: the same go-oidc verification as for HTTP.
// An error wrapping authn.ErrUnavailable means the token could not be
// checked (the call is answered Unavailable); any other, that it is invalid.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*authn.Identity, error)
}

// Config configures the interceptors. Evaluator is required, and at least
// one way to authenticate unless AllowAnonymous is set.
type Config struct {
	// Tokens verifies "authorization: Bearer" tokens; nil refuses every
	// call that carries authorization metadata.
	Tokens TokenVerifier
	// APIKeys checks API keys: usually an *authn.APIKeys. The metadata key
	// of API keys is the header it declares (authn.CredentialsOf: the
	// APIKeyConfig.Header, lower-cased), DefaultAPIKeyMetadata when it
	// declares none; it is asked with a request that holds only that
	// header. Nil refuses every call that carries an API key.
	APIKeys authn.Authenticator
	// ClientCertificates identifies callers by their TLS client certificate
	// when they present no other credential. A certificate whose chain the
	// TLS handshake did not verify (tls.RequestClientCert) refuses the call.
	ClientCertificates bool
	// CertificateIdentity turns a verified client certificate into an
	// identity; default: subject the first URI SAN (a SPIFFE ID), else the
	// common name, and the certificate's names as claims.
	CertificateIdentity func(cert *x509.Certificate) (*authn.Identity, error)
	// AllowAnonymous lets calls without credentials reach the policy, with
	// user.authenticated false. A denied anonymous call is answered
	// Unauthenticated.
	AllowAnonymous bool

	// Evaluator decides: a *policy.Engine, *authz.Remote, *authz.Fallback,
	// *authz.Cache, or any authz.Evaluator.
	Evaluator authz.Evaluator
	// Exempt lists full method names ("/grpc.health.v1.Health/Check") let
	// through without authentication or authorization. A name matches only
	// whole, byte for byte: no prefixes, no patterns. See HealthMethods and
	// ReflectionMethods.
	Exempt []string
	// OmitMessage leaves the request message out of the input. Without it
	// the message is marshalled when the policy reads it (always, with an
	// evaluator that cannot tell what its policy reads, such as a remote OPA).
	OmitMessage bool
	// MaxMessageBytes bounds the request message put into the input; a
	// larger one is refused with ResourceExhausted when the policy reads it.
	// Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// PreserveTokens adds the caller's raw token to the input (user.token).
	PreserveTokens bool
	// ForwardCredentials leaves the credentials the interceptors verified
	// (authorization, the API key) in the incoming metadata the handler
	// sees. Off by default, as for HTTP: the handler finds the caller, and
	// its token, in authz.FromContext. Identity metadata (x-forwarded-user
	// and the like, in any spelling) is always removed.
	ForwardCredentials bool
	// Timeout bounds authentication and decision of one call; past it the
	// call is refused with Unavailable. Default DefaultTimeout.
	Timeout time.Duration

	// Logger gets one line per decision; default slog.Default().
	Logger *slog.Logger
	// DecisionLogLevel is the level of the per-decision line; default
	// slog.LevelDebug, as for HTTP (authz.Config.DecisionLogLevel), so that
	// a busy service does not log every call unless asked. A decision that
	// fails is always logged at Error.
	DecisionLogLevel slog.Leveler
	// DecisionLogger, when set, receives every decision with its input.
	DecisionLogger policy.DecisionLogger
	// TracerProvider, when set, traces each call: a span regoguard.call
	// (continuing the client's W3C traceparent from the metadata when
	// nothing before the interceptors traced the call), with children
	// regoguard.authenticate, regoguard.input and regoguard.decision
	// (revision, allowed, decision ID), named as the HTTP middleware's.
	// Nil traces nothing and costs a nil check.
	TracerProvider trace.TracerProvider
	// Metrics, when set, counts each call by outcome (authz.OutcomeInvalid
	// for a bad method name or message), each decision's duration and
	// each fallback: the same interface as the HTTP middleware's
	// (authz.Config.Metrics). prommetrics.NewMiddleware with
	// MiddlewareOptions.GRPC exports it as regoguard_grpc_*. Nil counts
	// nothing, at no cost.
	Metrics authz.Metrics
}

// Interceptor holds the unary and stream server interceptors. Make one with
// [New]; install both with grpc.ChainUnaryInterceptor(i.Unary()) and
// grpc.ChainStreamInterceptor(i.Stream()).
type Interceptor struct {
	cfg        Config
	exempt     map[string]bool
	apiKeyMD   string
	keys       keySets
	maxMessage int
	timeout    time.Duration
	logger     *slog.Logger
	trace      *tracing
	// pipe decides and records: the step every front end shares.
	pipe *pipeline.Pipeline
}

// New checks cfg and returns the interceptors.
func New(cfg Config) (*Interceptor, error) {
	if cfg.Evaluator == nil {
		return nil, errors.New("grpcauthz: no Evaluator: give a policy engine or a remote OPA")
	}
	if cfg.Tokens == nil && cfg.APIKeys == nil && !cfg.ClientCertificates && !cfg.AllowAnonymous {
		return nil, errors.New("grpcauthz: no way to authenticate: set Tokens, APIKeys or ClientCertificates, or AllowAnonymous explicitly")
	}
	i := &Interceptor{
		cfg:        cfg,
		exempt:     map[string]bool{},
		maxMessage: cmp.Or(cfg.MaxMessageBytes, DefaultMaxMessageBytes),
		timeout:    cmp.Or(cfg.Timeout, DefaultTimeout),
		logger:     cfg.Logger,
		trace:      newTracing(cfg.TracerProvider),
	}
	if i.logger == nil {
		i.logger = slog.Default()
	}
	md, err := apiKeyMetadata(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	i.apiKeyMD = md
	i.keys = newKeySets(i.apiKeyMD)
	for _, m := range cfg.Exempt {
		if !canonicalMethod(m) {
			return nil, fmt.Errorf("grpcauthz: exempt method %q is not a full method name such as /pkg.Service/Method", m)
		}
		i.exempt[m] = true
	}
	logLevel := slog.LevelDebug
	if cfg.DecisionLogLevel != nil {
		logLevel = cfg.DecisionLogLevel.Level()
	}
	pcfg := pipeline.Config{
		Evaluator:      cfg.Evaluator,
		Logger:         i.logger,
		LogLevel:       logLevel,
		DecisionLogger: cfg.DecisionLogger,
	}
	if cfg.Metrics != nil {
		pcfg.Metrics = cfg.Metrics
	}
	if i.trace != nil {
		pcfg.Tracer = i.trace.tracer
	}
	i.pipe = pipeline.New(pcfg)
	if cfg.PreserveTokens {
		i.logger.Warn("raw tokens are added to the gRPC policy input (PreserveTokens): they may reach decision logs")
	}
	return i, nil
}

// apiKeyMetadata is the metadata key of API keys: the one header keys
// declares it reads, lower-cased.
func apiKeyMetadata(keys authn.Authenticator) (string, error) {
	if keys == nil {
		return DefaultAPIKeyMetadata, nil
	}
	hs := authn.CredentialsOf(keys).Headers
	switch len(hs) {
	case 0:
		return DefaultAPIKeyMetadata, nil
	case 1:
	default:
		return "", fmt.Errorf("grpcauthz: the API key store reads %d headers (%s): give one that reads one", len(hs), strings.Join(hs, ", "))
	}
	md := strings.ToLower(hs[0])
	if strings.HasSuffix(md, "-bin") || strings.HasPrefix(md, ":") || md == "authorization" {
		return "", fmt.Errorf("grpcauthz: the API key header %q is not a text metadata key of its own", hs[0])
	}
	return md, nil
}

// Unary returns the unary server interceptor.
func (i *Interceptor) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if i.exempt[info.FullMethod] {
			i.pipe.Count(authz.OutcomeSkipped)
			return handler(ctx, req)
		}
		call := Call{FullMethod: info.FullMethod, Request: req}
		call.Metadata, _ = metadata.FromIncomingContext(ctx)
		call.Peer, _ = peer.FromContext(ctx)
		res, err := i.check(ctx, call)
		if err != nil {
			return nil, err
		}
		ctx = i.keys.forHandler(ctx, call.Metadata, i.cfg.ForwardCredentials)
		return handler(authz.NewContext(ctx, res), req)
	}
}

// Stream returns the stream server interceptor. The stream is judged before
// its first message: a refused stream never reaches its handler.
func (i *Interceptor) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if i.exempt[info.FullMethod] {
			i.pipe.Count(authz.OutcomeSkipped)
			return handler(srv, ss)
		}
		ctx := ss.Context()
		call := Call{FullMethod: info.FullMethod, Stream: true}
		call.Metadata, _ = metadata.FromIncomingContext(ctx)
		call.Peer, _ = peer.FromContext(ctx)
		res, err := i.check(ctx, call)
		if err != nil {
			return err
		}
		ctx = i.keys.forHandler(ctx, call.Metadata, i.cfg.ForwardCredentials)
		return handler(srv, &serverStream{ServerStream: ss, ctx: authz.NewContext(ctx, res)})
	}
}

// serverStream hands the handler a context that carries the caller.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// Call is one gRPC call as the interceptors see it.
type Call struct {
	// FullMethod is the method as the client named it: /pkg.Service/Method.
	FullMethod string
	// Metadata is the call's incoming metadata.
	Metadata metadata.MD
	// Peer is the client, with its TLS state; nil when unknown.
	Peer *peer.Peer
	// Request is the request message of a unary call: a proto.Message, or
	// anything else when the server uses another codec (the policy cannot
	// read it then). Nil for a stream.
	Request any
	// Stream is true for a streaming call.
	Stream bool
}

// check authenticates and authorizes call within the configured time.
func (i *Interceptor) check(ctx context.Context, call Call) (authz.Result, error) {
	if !canonicalMethod(call.FullMethod) {
		i.pipe.Count(authz.OutcomeInvalid)
		return authz.Result{}, errMethod
	}
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	ctx, span := i.trace.startCall(ctx, call)
	res, err := i.authenticateAndAuthorize(ctx, call)
	end(span, err)
	return res, err
}

func (i *Interceptor) authenticateAndAuthorize(ctx context.Context, call Call) (authz.Result, error) {
	actx, span := i.trace.start(ctx, spanAuthenticate)
	id, err := i.authenticate(actx, call)
	endAuthenticate(span, id, err)
	if err != nil {
		return authz.Result{}, err
	}
	return i.authorize(ctx, call, id)
}

// errMethod refuses a method name that is not /service/method.
var errMethod = status.Error(codes.InvalidArgument, "the method name is not in canonical form")

// Authorize judges call made by id (nil: an anonymous caller), which the
// caller has authenticated: it builds the input, asks the evaluator and
// returns what the handler gets in its context, or the status error to
// answer. The interceptors call it after authenticating from metadata; the
// check command calls it with a given identity.
func (i *Interceptor) Authorize(ctx context.Context, call Call, id *authn.Identity) (authz.Result, error) {
	if !canonicalMethod(call.FullMethod) {
		i.pipe.Count(authz.OutcomeInvalid)
		return authz.Result{}, errMethod
	}
	return i.authorize(ctx, call, id)
}

// authorize is Authorize for a call whose method name is known to be
// canonical: check tests it before authenticating, once per call.
func (i *Interceptor) authorize(ctx context.Context, call Call, id *authn.Identity) (authz.Result, error) {
	if id == nil && !i.cfg.AllowAnonymous {
		i.pipe.Count(authz.OutcomeUnauthenticated)
		return authz.Result{}, errNoCredential
	}
	req := pipeline.Request{Identity: id, Attrs: [2]slog.Attr{slog.String("grpc_method", call.FullMethod)}}
	d, _, err := i.pipe.Decide(ctx, &req, func(fields *policy.InputFields) (ast.Value, error) {
		_, span := i.trace.start(ctx, spanInput)
		input, err := i.input(call, id, fields)
		end(span, err)
		return input, err
	})
	if err != nil {
		if ie := (*pipeline.InputError)(nil); errors.As(err, &ie) {
			i.pipe.Count(authz.OutcomeInvalid)
			return authz.Result{}, ie.Err
		}
	}
	switch {
	case err != nil:
		return authz.Result{}, refusal(codes.Unavailable, "no policy decision could be made", d.ID)
	case !d.Allow && (id == nil && d.Status == 0 || d.Status == 401):
		return authz.Result{}, refusal(codes.Unauthenticated, "authentication required", d.ID)
	case !d.Allow:
		reason := d.Reason
		if reason == "" {
			reason = "permission denied"
		}
		return authz.Result{}, refusal(codes.PermissionDenied, reason, d.ID)
	}
	return authz.Result{Identity: id, Decision: d}, nil
}

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail that a
// refusal made by the policy (or by its failure) carries. Its metadata
// "decision_id" names the decision in the logs, as the HTTP middleware's
// decision_id does.
const ErrorDomain = "regoguard"

// refusal is the status error of a call refused after a decision, with the
// decision's ID in an ErrorInfo detail.
func refusal(code codes.Code, msg, decisionID string) error {
	st := status.New(code, msg)
	withID, err := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   strings.ToUpper(strcase(code.String())),
		Domain:   ErrorDomain,
		Metadata: map[string]string{"decision_id": decisionID},
	})
	if err != nil {
		return st.Err()
	}
	return withID.Err()
}

// strcase turns a code name such as PermissionDenied into
// Permission_Denied, the form of google.rpc.Code names once upper-cased.
func strcase(s string) string {
	var b strings.Builder
	for k, r := range s {
		if k > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Input returns the policy input the interceptors build for call made by id
// (nil: anonymous), whole.
func (i *Interceptor) Input(call Call, id *authn.Identity) (ast.Value, error) {
	return i.input(call, id, nil)
}

// canonicalMethod reports whether m is /service/method with exactly two
// slashes and neither part empty: the only form gRPC servers route, so the
// policy and the server read the same service and method.
func canonicalMethod(m string) bool {
	rest, ok := strings.CutPrefix(m, "/")
	if !ok {
		return false
	}
	svc, meth, ok := strings.Cut(rest, "/")
	return ok && svc != "" && meth != "" && !strings.Contains(meth, "/")
}
