package main_test

import (
	"strings"
	"testing"
)

// TestCheckGRPCCases: cases may describe gRPC calls, judged by the gRPC
// interceptors with the same policy as the HTTP cases of the same file.
func TestCheckGRPCCases(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/grpc/policy", "testdata/grpc/cases.yaml")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"grpc /shop.Orders/List", `deny 403 PermissionDenied "not allowed"`, "deny 401 Unauthenticated", "7 passed, 0 failed"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}

	res = run(t, nil, "check", "--policy", "testdata/grpc/policy", "testdata/grpc/wrong.yaml")
	if res.code == 0 || !strings.Contains(res.stdout, "code PermissionDenied, want OK") {
		t.Fatalf("a wrong gRPC expectation passed: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	res = run(t, nil, "check", "--policy", "testdata/grpc/policy", "testdata/grpc/bad.yaml")
	if res.code == 0 || !strings.Contains(res.stderr, "full method name") || !strings.Contains(res.stderr, "bad.yaml:2") {
		t.Fatalf("a malformed gRPC case was accepted: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
