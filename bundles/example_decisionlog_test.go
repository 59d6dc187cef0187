package bundles_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

// Decision logs in OPA's event format, one JSON object per line in a file
// (a collector, Service, takes the same events in batches). The middleware
// hands it every decision; the policy's system.log.mask rule keeps the
// caller's email out of the log.
func ExampleNewDecisionLogger() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	dir, err := os.MkdirTemp("", "decisions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p := policy.MustParse(map[string]string{
		"authz.rego": "package httpapi.authz\n\ndefault allow := false\n\nallow if input.method == \"GET\"\n",
		"mask.rego":  "package system.log\n\nmask contains \"/input/user/claims/email\"\n",
	}, nil)
	engine, err := policy.New(ctx, policy.Config{Logger: quiet}, p)
	if err != nil {
		log.Fatal(err)
	}
	dl, err := bundles.NewDecisionLogger(ctx, bundles.DecisionLogConfig{File: filepath.Join(dir, "decisions.jsonl"), Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	if err := dl.UsePolicy(ctx, p); err != nil { // a bundles.Manager does this on every activation
		log.Fatal(err)
	}

	auth := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) {
		return &authn.Identity{Subject: "alice", Method: authn.MethodAPIKey, Claims: map[string]any{"email": "alice@example.com"}}, nil
	})
	guard, err := authz.New(authz.Config{Authenticator: auth, Evaluator: engine, DecisionLogger: dl, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	h := guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, method := range []string{"GET", "DELETE"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/orders/7", nil))
	}
	dl.Stop(ctx) // flushes and fsyncs the file

	f, err := os.Open(filepath.Join(dir, "decisions.jsonl"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var ev struct {
			Path   string `json:"path"`
			Result any    `json:"result"`
			Input  struct {
				Method string `json:"method"`
				User   struct {
					Claims map[string]any `json:"claims"`
				} `json:"user"`
			} `json:"input"`
			Erased []string `json:"erased"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Path, ev.Input.Method, ev.Result, ev.Input.User.Claims, ev.Erased)
	}
	// Output:
	// data.httpapi.authz GET map[allow:true] map[] [/input/user/claims/email]
	// data.httpapi.authz DELETE map[allow:false] map[] [/input/user/claims/email]
}
