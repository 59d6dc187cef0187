package policy_test

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

//go:embed testdata/rbac
var rbacFS embed.FS

// TestMain keeps the engines' "policy loaded" lines out of the test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func input(t *testing.T, doc string) ast.Value {
	t.Helper()
	v, err := ast.ParseTerm(doc)
	if err != nil {
		t.Fatalf("parse input %s: %v", doc, err)
	}
	return v.Value
}

func mustEval(t *testing.T, e *policy.Engine, doc string) policy.Decision {
	t.Helper()
	d, err := e.Eval(context.Background(), input(t, doc))
	if err != nil {
		t.Fatalf("Eval(%s): %v", doc, err)
	}
	return d
}

func TestObjectDecisionFromFiles(t *testing.T) {
	p, err := policy.LoadFiles("testdata/rbac")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Modules["testdata/rbac/authz_test.rego"]; ok {
		t.Error("unit test module was loaded into the serving policy")
	}
	e, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}

	allowed := mustEval(t, e, `{"method": "POST", "path": "/docs/7", "user": {"roles": ["writer"]}}`)
	if !allowed.Allow || !allowed.Defined || allowed.Reason != "" || allowed.Headers["X-Policy"] != "rbac" {
		t.Errorf("writer POST /docs: got %+v, want allow with header X-Policy", allowed)
	}
	denied := mustEval(t, e, `{"method": "POST", "path": "/docs/7", "user": {"roles": ["reader"]}}`)
	if denied.Allow || denied.Reason != "not in a role that grants this" || denied.Status != 0 {
		t.Errorf("reader POST /docs: got %+v, want deny with reason", denied)
	}
	hidden := mustEval(t, e, `{"method": "GET", "path": "/secret", "user": {"roles": []}}`)
	if hidden.Allow || hidden.Status != 404 {
		t.Errorf("GET /secret: got %+v, want deny with status 404", hidden)
	}
	if !strings.HasPrefix(allowed.Revision, "sha256:") || allowed.Revision != e.Revision() {
		t.Errorf("revision %q, engine says %q", allowed.Revision, e.Revision())
	}
}

func TestBooleanDecisionAndUndefinedIsDeny(t *testing.T) {
	p := policy.MustParse(map[string]string{"allow.rego": `package app
allow if input.user == "alice"
`}, nil)
	e, err := policy.New(context.Background(), policy.Config{Decision: "app/allow"}, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := mustEval(t, e, `{"user": "alice"}`); !d.Allow || !d.Defined {
		t.Errorf("alice: got %+v, want allow", d)
	}
	d := mustEval(t, e, `{"user": "mallory"}`)
	if d.Allow || d.Defined {
		t.Errorf("mallory: got %+v, want undefined deny", d)
	}
}

func TestDecisionOfTheWrongShapeIsAnError(t *testing.T) {
	p := policy.MustParse(map[string]string{"x.rego": `package app
allow := "yes"
`}, nil)
	e, err := policy.New(context.Background(), policy.Config{Decision: "data.app"}, p)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Eval(context.Background(), ast.NewObject())
	if err == nil || d.Allow {
		t.Fatalf("got %+v, %v; want an error and no allow", d, err)
	}
	if !strings.Contains(err.Error(), `"allow" must be a boolean`) {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

func TestNoPolicyLoaded(t *testing.T) {
	e, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Eval(context.Background(), ast.NewObject()); !errors.Is(err, policy.ErrNoPolicy) {
		t.Fatalf("got %v, want ErrNoPolicy", err)
	}
	if e.Ready() {
		t.Error("Ready before the first load")
	}
}

func TestWrongPackageIsACompileError(t *testing.T) {
	p := policy.MustParse(map[string]string{"x.rego": "package other\nallow := true\n"}, nil)
	_, err := policy.New(context.Background(), policy.Config{}, p)
	if err == nil || !strings.Contains(err.Error(), "data.httpapi.authz") {
		t.Fatalf("got %v, want an error naming the decision", err)
	}
}

func TestSyntaxErrorNamesFileAndLineAndOldPolicyKeepsAnswering(t *testing.T) {
	e, err := policy.New(context.Background(), policy.Config{}, mustLoad(t, "testdata/rbac"))
	if err != nil {
		t.Fatal(err)
	}
	before := e.Revision()

	_, err = policy.LoadFiles("testdata/broken")
	var ce *policy.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *CompileError", err)
	}
	if got := ce.Problems[0]; got.File != "testdata/broken/authz.rego" || got.Line != 5 || got.Column == 0 {
		t.Errorf("problem %+v, want testdata/broken/authz.rego line 5 with a column", got)
	}
	if !strings.Contains(err.Error(), "testdata/broken/authz.rego:5:") {
		t.Errorf("message %q lacks file:line:", err)
	}

	// A module that parses but does not compile is refused by Load itself.
	bad := policy.MustParse(map[string]string{"typo.rego": "package httpapi.authz\n\nallow if {\n\tinput.method == \"GET\"\n\tnot_a_function(1)\n}\n"}, nil)
	err = e.Load(context.Background(), bad)
	if !errors.As(err, &ce) || ce.Problems[0].File != "typo.rego" || ce.Problems[0].Line != 5 {
		t.Fatalf("Load(bad) = %v, want a compile error at typo.rego:5", err)
	}
	if e.Revision() != before {
		t.Errorf("revision changed to %q after a failed load", e.Revision())
	}
	if st := e.Status(); st.LastError == nil || st.Failures != 1 || st.Loads != 1 {
		t.Errorf("status %+v, want one load, one failure and the last error", st)
	}
	if d := mustEval(t, e, `{"method": "GET", "path": "/docs", "user": {"roles": ["reader"]}}`); !d.Allow {
		t.Errorf("old policy stopped answering: %+v", d)
	}
}

func mustLoad(t *testing.T, paths ...string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEmbeddedPolicyAndDataUnderData(t *testing.T) {
	p, err := policy.LoadFS(rbacFS, "testdata/rbac")
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.Document()
	if err != nil {
		t.Fatal(err)
	}
	roles, ok := data["roles"].(map[string]any)
	if !ok || roles["writer"] == nil {
		t.Fatalf("data %v: want roles/data.json merged under data.roles", data)
	}
	e, err := policy.New(context.Background(), policy.Config{Decision: "httpapi/authz/allow"}, p)
	if err != nil {
		t.Fatal(err)
	}
	if d := mustEval(t, e, `{"method": "GET", "path": "/docs/a", "user": {"roles": ["reader"]}}`); !d.Allow {
		t.Errorf("embedded policy denied a reader: %+v", d)
	}
}

func TestReloadUnderConcurrentEvaluation(t *testing.T) {
	ctx := context.Background()
	allowGet := `package httpapi.authz
allow if input.method == "GET"
`
	alsoPost := `package httpapi.authz
allow if input.method in {"GET", "POST"}
`
	e, err := policy.New(ctx, policy.Config{}, policy.MustParse(map[string]string{"a.rego": allowGet}, nil))
	if err != nil {
		t.Fatal(err)
	}
	get := input(t, `{"method": "GET"}`)
	var failures, evals atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Eval(ctx, get)
				evals.Add(1)
				if err != nil || !d.Allow {
					failures.Add(1)
				}
			}
		})
	}
	for i := range 20 {
		src := allowGet
		if i%2 == 0 {
			src = alsoPost
		}
		if err := e.Load(ctx, policy.MustParse(map[string]string{"a.rego": src}, nil)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d evaluations failed during reloads", failures.Load(), evals.Load())
	}
	if evals.Load() == 0 {
		t.Fatal("no evaluation ran")
	}
	if st := e.Status(); st.Loads != 21 {
		t.Errorf("status counts %d loads, want 21", st.Loads)
	}
}

func TestDeniedBuiltinFailsToCompile(t *testing.T) {
	p := policy.MustParse(map[string]string{"net.rego": `package httpapi.authz
allow if http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200
`}, nil)
	_, err := policy.New(context.Background(), policy.Config{DenyBuiltins: []string{"http.send"}}, p)
	if err == nil || !strings.Contains(err.Error(), "http.send") || !strings.Contains(err.Error(), "net.rego:2:") {
		t.Fatalf("got %v, want a compile error naming http.send at net.rego:2", err)
	}
}

func TestStrictByDefault(t *testing.T) {
	p := policy.MustParse(map[string]string{"s.rego": `package httpapi.authz
import data.unused
allow := true
`}, nil)
	if _, err := policy.New(context.Background(), policy.Config{}, p); err == nil {
		t.Error("strict compilation accepted an unused import")
	}
	if _, err := policy.New(context.Background(), policy.Config{NonStrict: true}, p); err != nil {
		t.Errorf("non-strict compilation refused: %v", err)
	}
}

func TestPrintGoesToSlog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	p := policy.MustParse(map[string]string{"p.rego": `package httpapi.authz
allow if {
	print("checking", input.user)
	input.user == "alice"
}
`}, nil)
	e, err := policy.New(context.Background(), policy.Config{Logger: logger}, p)
	if err != nil {
		t.Fatal(err)
	}
	mustEval(t, e, `{"user": "alice"}`)
	if !strings.Contains(buf.String(), `"msg":"checking alice"`) || !strings.Contains(buf.String(), `p.rego:3`) {
		t.Errorf("log %q lacks the print output and its location", buf.String())
	}
}

func TestWatchFilesReloadsAndKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "authz.rego")
	write := func(src string) {
		t.Helper()
		// Write then rename, as deploy tools do, so no half-written file is read.
		tmp := filepath.Join(dir, ".tmp")
		if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("package httpapi.authz\nallow if input.method == \"GET\"\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := policy.New(ctx, policy.Config{Logger: slog.New(slog.DiscardHandler)}, mustLoad(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WatchFiles(ctx, 20*time.Millisecond, dir); err != nil {
		t.Fatal(err)
	}
	post := `{"method": "POST"}`
	if mustEval(t, e, post).Allow {
		t.Fatal("POST allowed before the change")
	}

	write("package httpapi.authz\nallow if input.method == \"POST\"\n")
	waitFor(t, func() bool { return mustEval(t, e, post).Allow })
	good := e.Revision()

	write("package httpapi.authz\nallow if input.method == )\n")
	waitFor(t, func() bool { return e.Status().LastError != nil })
	if e.Revision() != good || !mustEval(t, e, post).Allow {
		t.Error("a broken file replaced the working policy")
	}
	if !strings.Contains(e.Status().LastError.Error(), "authz.rego:2:") {
		t.Errorf("last error %q does not name file and line", e.Status().LastError)
	}
}

// waitFor polls cond, since file events arrive asynchronously. It bounds the
// wait, not the speed of anything: a slow machine only makes it poll longer.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A request that goes away stops its evaluation: the engine passes the
// context's cancellation on to OPA.
func TestCancelledContextStopsEvaluation(t *testing.T) {
	p := policy.MustParse(map[string]string{"slow.rego": `package httpapi.authz
allow if count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) > 0
`}, nil)
	e, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	d, err := e.Eval(ctx, ast.NewObject())
	if err == nil || d.Allow {
		t.Fatalf("got %+v, %v; want the evaluation cancelled", d, err)
	}
	if !strings.Contains(err.Error(), "cancel") {
		t.Errorf("error %q does not say the evaluation was cancelled", err)
	}
}
