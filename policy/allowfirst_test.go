package policy_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/policy"
)

// conflicted allows GETs; its other rules make evaluating the whole package
// fail (a complete rule with two values), so a test can tell which rules an
// evaluation read.
const conflicted = `package httpapi.authz

default allow := false

allow if input.method == "GET"

reason := "read only" if not allow

status := 405 if not allow

broken := 1 if input.method
broken := 2 if input.method
`

func TestAllowedRequestEvaluatesOnlyAllow(t *testing.T) {
	e, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"p.rego": conflicted}, nil))
	if err != nil {
		t.Fatal(err)
	}
	d := mustEval(t, e, `{"method": "GET"}`)
	if !d.Allow || !d.Defined || d.Reason != "" || d.Status != 0 {
		t.Errorf("GET: got %+v, want a bare allow", d)
	}
	if want := map[string]any{"allow": true}; !reflect.DeepEqual(d.Result, want) {
		t.Errorf("GET: result %#v, want %#v", d.Result, want)
	}
	if d.Revision != e.Revision() {
		t.Errorf("GET: revision %q, engine serves %q", d.Revision, e.Revision())
	}
	// A refusal evaluates the whole package, which here fails: an error,
	// never an allow.
	d, err = e.Eval(context.Background(), input(t, `{"method": "POST"}`))
	if err == nil || d.Allow {
		t.Fatalf("POST: got %+v, %v; want the whole package's error", d, err)
	}
	if !strings.Contains(err.Error(), "data.httpapi.authz") {
		t.Errorf("error %q does not name the decision", err)
	}
}

func TestRefusalCarriesReasonAndStatus(t *testing.T) {
	src := strings.Split(conflicted, "broken")[0] + "helper := true\n"
	for _, whole := range []bool{false, true} {
		e, err := policy.New(context.Background(), policy.Config{WholeDocument: whole}, policy.MustParse(map[string]string{"p.rego": src}, nil))
		if err != nil {
			t.Fatal(err)
		}
		d := mustEval(t, e, `{"method": "DELETE"}`)
		if d.Allow || d.Reason != "read only" || d.Status != 405 {
			t.Errorf("WholeDocument %v: DELETE got %+v, want a refusal with reason and status", whole, d)
		}
		if _, ok := d.Result.(map[string]any)["helper"]; !ok {
			t.Errorf("WholeDocument %v: refusal result %#v lacks the package's other rules", whole, d.Result)
		}
		allowed := mustEval(t, e, `{"method": "GET"}`)
		_, hasHelper := allowed.Result.(map[string]any)["helper"]
		if !allowed.Allow || hasHelper != whole {
			t.Errorf("WholeDocument %v: GET result %#v, want allow with helper=%v", whole, allowed.Result, whole)
		}
	}
}

// broken is a rule whose evaluation fails: a package that has it can only
// be evaluated whole if the decision comes out as an error.
const broken = `
broken := 1 if input.method
broken := 2 if input.method
`

func TestWholeDocumentWhenAllowIsNotTheWholeStory(t *testing.T) {
	allowTrue := map[string]string{"p.rego": "package httpapi.authz\nallow := true\n" + broken}
	cases := map[string]struct {
		decision string
		modules  map[string]string
		data     map[string]any
	}{
		"headers rule": {modules: map[string]string{"p.rego": "package httpapi.authz\nallow := true\nheaders[\"X-Policy\"] := \"v1\"\n" + broken}},
		"headers in data": {
			modules: allowTrue,
			data:    map[string]any{"httpapi": map[string]any{"authz": map[string]any{"headers": map[string]any{"X-Policy": "v1"}}}},
		},
		"headers in typed data": {
			modules: allowTrue,
			data:    map[string]any{"httpapi": map[string]any{"authz": map[string]map[string]string{"headers": {"X-Frame-Options": "DENY"}}}},
		},
		"allow is a set": {modules: map[string]string{"p.rego": "package httpapi.authz\nallow contains \"yes\"\n" + broken}},
		"decision is a rule": {decision: "httpapi/authz", modules: map[string]string{"p.rego": `package httpapi
authz := {"allow": true, "extra": 1} if input.method
`}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := policy.New(context.Background(), policy.Config{Decision: c.decision}, policy.MustParse(c.modules, c.data))
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Eval(context.Background(), input(t, `{"method": "GET"}`))
			switch name {
			case "decision is a rule":
				if err != nil || !d.Allow || d.Result.(map[string]any)["extra"] == nil {
					t.Errorf("got %+v, %v; want the rule's whole value", d, err)
				}
			default:
				// Evaluating the whole package meets the broken rule.
				if err == nil {
					t.Errorf("got %+v; want the whole package evaluated (and its error)", d)
				}
			}
		})
	}
}
