package grpcauthz

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/regoguard/regoguard/authn"
)

// Metadata keys are compared as the HTTP middleware compares header names,
// in the spelling CGI-style servers merge them under (lower case, "_" read
// as "-"), and here also without the "-bin" suffix of binary keys: a gRPC
// server or a gateway behind this one may read any of them as the other.

// keySets are the normalised keys the interceptors treat apart.
type keySets struct {
	consumed map[string]bool // credentials the interceptors verify: authorization, the API key
	identity map[string]bool // proxy identity headers (authn.IdentityHeaders)
}

func newKeySets(apiKeyMD string) keySets {
	ks := keySets{consumed: map[string]bool{"authorization": true, normKey(apiKeyMD): true}, identity: map[string]bool{}}
	for _, h := range authn.IdentityHeaders() {
		ks.identity[normKey(h)] = true
	}
	return ks
}

// inInput reports whether the metadata key k (lower case) may reach the
// policy input: not binary, not a credential, not an identity claim.
func (ks keySets) inInput(k string) bool {
	if strings.HasSuffix(k, "-bin") {
		return false
	}
	n := normKey(k)
	if ks.consumed[n] || ks.identity[n] {
		return false
	}
	// A key that looks like a credential (x-auth-token, x-client-secret,
	// x-session-id, cf-access-jwt-assertion, x-auth-key) stays out of the
	// input, and so out of decision logs, as the HTTP middleware keeps such
	// headers out.
	return !authn.LooksLikeCredential(n)
}

// forHandler returns ctx with incoming metadata the handler may see: without
// identity keys in any spelling (the caller is in authz.FromContext, and a
// handler that forwards metadata must not pass on a claim a client made), and
// without the credentials the interceptors consumed unless forward is set.
// ctx itself is returned when nothing is removed.
func (ks keySets) forHandler(ctx context.Context, md metadata.MD, forward bool) context.Context {
	drop := func(k string) bool {
		n := normKey(k)
		return ks.identity[n] || !forward && ks.consumed[n]
	}
	removed := false
	for k := range md {
		if drop(k) {
			removed = true
			break
		}
	}
	if !removed {
		return ctx
	}
	kept := make(metadata.MD, len(md))
	for k, vs := range md {
		if !drop(k) {
			kept[k] = vs
		}
	}
	return metadata.NewIncomingContext(ctx, kept)
}
