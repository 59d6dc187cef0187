package grpcauthz_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/policy"
)

// Issue #22, class 2 over gRPC: credentials inside metadata values (URLs
// in referer or x-original-uri, tokens in sec-websocket-protocol, as
// gRPC-Web and proxies pass them) reach no decision event; the rest of the
// metadata stays readable.
func TestProbeCredentialsStayOutOfDecisionEvents(t *testing.T) {
	var mu sync.Mutex
	var logged strings.Builder
	dl := decisionLoggerFunc(func(_ context.Context, ev policy.DecisionEvent) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(&logged, ev.Input)
		return nil
	})
	conn, _ := serve(t, grpcauthz.Config{AllowAnonymous: true, DecisionLogger: dl,
		Evaluator: engine(t, "package grpcapi.authz\n\nallow if count(input.metadata) >= 0\n")})
	type probe struct{ key, value, secret string }
	var probes []probe
	n := 0
	for _, name := range []string{"access_token", "code", "id_token", "X-Amz-Signature", "sig", "signature", "token", "api_key", "key"} {
		for _, key := range []string{"referer", "x-original-uri", "x-forwarded-uri"} {
			n++
			s := fmt.Sprintf("GrpcS3cr3t%03dZ", n)
			probes = append(probes, probe{key, "https://app.example/cb?state=st8&" + name + "=" + s, s})
		}
	}
	for _, v := range []string{"graphql-ws, eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.%s", "base64url.bearer.authorization.k8s.io.%s", "access_token, %s"} {
		n++
		s := fmt.Sprintf("GrpcS3cr3t%03dZ", n)
		probes = append(probes, probe{"sec-websocket-protocol", fmt.Sprintf(v, s), s})
	}
	for _, p := range probes {
		if _, err := call(conn, "/test.Docs/Public", map[string]any{}, p.key, p.value, "x-tenant", "acme"); err != nil {
			t.Fatalf("%s: %v", p.key, err)
		}
	}
	mu.Lock()
	text := logged.String()
	mu.Unlock()
	var through []string
	for _, p := range probes {
		if strings.Contains(text, p.secret) {
			through = append(through, p.key+": "+p.value)
		}
	}
	for _, want := range []string{"st8", "acme", "graphql-ws"} {
		if !strings.Contains(text, want) {
			t.Errorf("decision events lost %q, which is no credential:\n%s", want, text)
		}
	}
	t.Logf("gRPC credential probes: %d, let through: %d", len(probes), len(through))
	if len(through) > 0 {
		t.Fatalf("%d of %d credentials in metadata reached a decision event:\n%s", len(through), len(probes), strings.Join(through, "\n"))
	}
}
