package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/policy"
)

func TestDecisionRefSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "data.httpapi.authz",
		"httpapi/authz":            "data.httpapi.authz",
		"/httpapi/authz":           "data.httpapi.authz",
		"data.httpapi.authz":       "data.httpapi.authz",
		"httpapi.authz":            "data.httpapi.authz", // the package name, as written in Rego
		"httpapi.authz.allow":      "data.httpapi.authz.allow",
		"tenants/a.b/authz":        `data.tenants["a.b"].authz`, // with slashes, a dot is part of a segment
		"data.httpapi.authz.allow": "data.httpapi.authz.allow",
	} {
		ref, err := policy.DecisionRef(in)
		if err != nil || ref.String() != want {
			t.Errorf("DecisionRef(%q) = %v, %v; want %s", in, ref, err, want)
		}
	}
	for _, bad := range []string{"a//b", "httpapi..authz", "/"} {
		if ref, err := policy.DecisionRef(bad); err == nil {
			t.Errorf("DecisionRef(%q) = %v, want an error", bad, ref)
		}
	}
}

func TestUndefinedDecisionNamesThePackages(t *testing.T) {
	p := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow := true\n", "t_test.rego": "package httpapi.authz_test\ntest_x if true\n"}, nil)
	_, err := policy.New(context.Background(), policy.Config{Decision: "httpapi/authx"}, p)
	if !errors.Is(err, policy.ErrUndefinedDecision) {
		t.Fatalf("error %v, want ErrUndefinedDecision", err)
	}
	if !strings.Contains(err.Error(), "data.httpapi.authx") || !strings.Contains(err.Error(), "packages: httpapi.authz)") {
		t.Errorf("error %q does not name the decision and the policy's packages", err)
	}
}
