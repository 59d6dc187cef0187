package authz_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

func policyOf(t *testing.T, src string) *policy.Engine {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"p.rego": src}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The input holds only what the policy reads: an enricher the policy never
// reads is not called and a body it never reads is not parsed. Logging the
// input (or shipping decision logs) brings every field back.
func TestInputHoldsOnlyWhatThePolicyReads(t *testing.T) {
	const methodOnly = "package httpapi.authz\nallow if input.method == \"POST\"\n"
	const readsAll = "package httpapi.authz\nallow if {\n\tinput.method == \"POST\"\n\tinput.tenant == \"acme\"\n\tinput.body.n == 1\n}\n"
	cases := []struct {
		name       string
		src        string
		logInput   bool
		wantCalls  int64
		wantStatus int
	}{
		{"policy reads method only", methodOnly, false, 0, 200},
		{"policy reads tenant and body", readsAll, false, 1, 400},
		{"input logged", methodOnly, true, 1, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var calls atomic.Int64
			tenant := authz.Enricher{Key: "tenant", Func: func(*http.Request, []byte) (any, error) {
				calls.Add(1)
				return "acme", nil
			}}
			h := newMiddleware(t, authz.Config{Evaluator: policyOf(t, c.src), Body: true, LogInput: c.logInput,
				Enrichers: []authz.Enricher{tenant}})
			post := func(body string) response {
				r := request("POST", "/api/items", "alice")
				r.Header.Set("Content-Type", "application/json")
				r.Body = io.NopCloser(strings.NewReader(body))
				return do(t, h, r)
			}
			post(`{"n": 1}`)
			if n := calls.Load(); n != c.wantCalls {
				t.Errorf("enricher called %d times, want %d", n, c.wantCalls)
			}
			// Broken JSON is a 400 only when the body is parsed.
			if res := post(`{"n": `); res.status != c.wantStatus {
				t.Errorf("broken body: status %d, want %d (%v)", res.status, c.wantStatus, res.body)
			}
		})
	}
	// The same policy still decides on the fields it reads.
	h := newMiddleware(t, authz.Config{Evaluator: policyOf(t, readsAll), Body: true,
		Enrichers: []authz.Enricher{{Key: "tenant", Func: func(*http.Request, []byte) (any, error) { return "acme", nil }}}})
	r := request("POST", "/api/items", "alice")
	r.Header.Set("Content-Type", "application/json")
	r.Body = io.NopCloser(strings.NewReader(`{"n": 1}`))
	if res := do(t, h, r); res.status != 200 {
		t.Errorf("allowed request: %d %v", res.status, res.body)
	}
}

// countingClaim counts its conversions into the policy input (a claim of a
// type OPA converts through JSON).
type countingClaim struct{ n *atomic.Int64 }

func (c countingClaim) MarshalJSON() ([]byte, error) {
	c.n.Add(1)
	return []byte(`{"theme": "dark"}`), nil
}

// The user object holds only what the policy reads of it: a token's other
// claims are never converted. A policy that reads the claims by a computed
// key, or the user whole, gets every claim.
func TestInputHoldsOnlyTheClaimsThePolicyReads(t *testing.T) {
	cases := []struct {
		name, rules string
		conversions int64
	}{
		{"one claim", `allow if "staff" in input.user.claims.groups`, 0},
		{"claims by a computed key", "allow if {\n\tsome k\n\t\"staff\" in input.user.claims[k]\n}", 1},
		{"the user whole", "allow if {\n\tu := input.user\n\t\"staff\" in u.claims.groups\n}", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var n atomic.Int64
			auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) {
				return &authn.Identity{Subject: "alice", Method: authn.MethodOIDC,
					Claims: map[string]any{"groups": []any{"staff"}, "profile": countingClaim{&n}}}, nil
			})
			h := newMiddleware(t, authz.Config{Authenticator: auth, Evaluator: policyOf(t, "package httpapi.authz\n"+c.rules+"\n")})
			if res := do(t, h, request("GET", "/api/items", "")); res.status != 200 {
				t.Fatalf("status %d %v, want 200", res.status, res.body)
			}
			if got := n.Load(); got != c.conversions {
				t.Errorf("the unread claim was converted %d times, want %d", got, c.conversions)
			}
		})
	}
}

// Pruning never changes a decision: policies that deny on a claim read in
// roundabout ways decide the same with the pruned input as with the whole
// one (LogInput builds everything). A claim the analysis missed would be
// absent from the pruned input, and the request allowed.
func TestPrunedInputDecidesAsTheWholeInput(t *testing.T) {
	policies := map[string]string{
		"direct":          `allow if not input.user.claims.suspended`,
		"alias":           "allow if {\n\tc := input.user.claims\n\tnot c.suspended\n}",
		"iteration":       `allow if count({k | some k, _ in input.user.claims; k == "suspended"}) == 0`,
		"object.get":      `allow if not object.get(input.user, ["claims", "suspended"], false)`,
		"function":        "suspended(u) if u.claims.suspended\n\nallow if not suspended(input.user)",
		"import":          "import input.user.claims as c\n\nallow if not c.suspended",
		"computed key":    `allow if not input.user.claims[concat("", ["sus", "pended"])]`,
		"walk":            "found if {\n\twalk(input, [p, v])\n\tp[count(p) - 1] == \"suspended\"\n}\n\nallow if not found",
		"with":            "inner if input.user.claims.suspended\n\nallow if not inner with input.user.claims.extra as 1",
		"subject":         "blocked := {\"mallory\"}\n\nallow if not blocked[input.user.sub]",
		"whole user":      `allow if not "suspended" in object.keys(input.user.claims)`,
		"nested in array": `allow if not [x | x := input.user.claims.suspended][0]`,
	}
	identities := map[string]*authn.Identity{
		"suspended":        {Subject: "mallory", Method: authn.MethodOIDC, Claims: map[string]any{"suspended": true, "groups": []any{"staff"}}},
		"in good standing": {Subject: "alice", Method: authn.MethodOIDC, Claims: map[string]any{"groups": []any{"staff"}}},
	}
	for name, rules := range policies {
		for who, id := range identities {
			auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) { return id, nil })
			status := func(logInput bool) int {
				h := newMiddleware(t, authz.Config{Authenticator: auth, LogInput: logInput,
					Evaluator: policyOf(t, "package httpapi.authz\n\n"+rules+"\n")})
				return do(t, h, request("GET", "/api/items", "")).status
			}
			pruned, whole := status(false), status(true)
			if pruned != whole {
				t.Errorf("%s, %s: %d with the pruned input, %d with the whole", name, who, pruned, whole)
			}
			if who == "suspended" && whole != http.StatusForbidden {
				t.Errorf("%s: the suspended user got %d, want 403", name, whole)
			}
		}
	}
}
