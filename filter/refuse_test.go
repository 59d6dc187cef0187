package filter

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestRefusals: what no target can express is refused with the rule, the
// file:line:col of the expression and why; never dropped.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name, rules string
		line        int
		reason      string
	}{
		{"function on field", "include if lower(input.docs.owner) == input.user", 3, "cannot be translated"},
		{"nested field", "include if input.docs.meta.owner == input.user", 3, "not a column"},
		{"array column", `include if "x" in input.docs.tags`, 3, "array or set column"},
		{"every", "include if every t in input.docs.tags { t != \"x\" }", 3, "every"},
		{"regex", `include if regex.match("^a", input.docs.owner)`, 3, "cannot be translated"},
		{"whole row", "include if input.docs == {}", 3, "whole row"},
		{"count", "include if count(input.docs.owner) > 1", 3, "cannot be translated"},
		{"order vs boolean", "include if input.docs.level < true", 3, "boolean"},
		{"startswith of known", `include if startswith("abc", input.docs.title)`, 3, "known string first"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCompiler(t, tc.rules, nil)
			f, err := c.Compile(context.Background(), ast.MustParseTerm(`{"user": "alice"}`).Value)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("got filter %v, error %v; want a refusal", f, err)
			}
			if fe.Rule != "data.filters.include" || fe.File != "filters.rego" || fe.Line != tc.line || fe.Column == 0 {
				t.Errorf("error %q: rule %q at %s:%d:%d, want data.filters.include at filters.rego:%d", err, fe.Rule, fe.File, fe.Line, fe.Column, tc.line)
			}
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", fe.Reason, tc.reason)
			}
			t.Log(err)
		})
	}
}

// TestTargetRefusals: what one target cannot express is refused when
// rendering for it, and nothing is dropped.
func TestTargetRefusals(t *testing.T) {
	c, _ := newTestCompiler(t, `include if startswith(input.docs.title, "a")
include if input.docs.owner == input.docs.dept
include if not input.docs.dept in {"hr"}`, nil)
	f, err := c.Compile(context.Background(), ast.MustParseTerm(`{}`).Value)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		form UCASTForm
		want string
	}{{UCASTMinimal, "startswith"}, {UCASTPrisma, "two fields"}} {
		_, err := f.UCAST(tc.form, nil)
		var fe *Error
		if !errors.As(err, &fe) || fe.Target != "ucast+"+string(tc.form) || !strings.Contains(fe.Reason, tc.want) {
			t.Errorf("%s: %v, want a refusal naming %q", tc.form, err, tc.want)
		}
	}
	if _, err := f.UCAST(UCASTAll, nil); err != nil {
		t.Errorf("all: %v", err)
	}
	status, body := ErrorResponse(func() error { _, err := f.UCAST(UCASTMinimal, nil); return err }())
	if status != 400 || !strings.Contains(string(body), `"pe_fragment_error"`) {
		t.Errorf("ErrorResponse: %d %s", status, body)
	}
}
