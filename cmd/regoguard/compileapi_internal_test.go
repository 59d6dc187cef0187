package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/policy"
)

// Every malformed Compile API request is refused with OPA's status and
// code and a message naming the fault; none is answered as if valid.
func TestDecodeCompileRequestRefusals(t *testing.T) {
	const sql = "application/vnd.opa.sql.postgresql+json"
	for _, tc := range []struct {
		name, body, path, accept string
		status                   int
		want                     string
	}{
		{"not JSON", `{"input":`, "filters/include", sql, 400, "decoding request"},
		{"two values", `{} {}`, "filters/include", sql, 400, "more than one"},
		{"ad-hoc query", `{"query":"data.x = 1"}`, "filters/include", sql, 400, "query"},
		{"masks", `{"options":{"maskRule":"masks"}}`, "filters/include", sql, 400, "maskRule"},
		{"inlining", `{"options":{"disableInlining":["data.x"]}}`, "filters/include", sql, 400, "disableInlining"},
		{"bad unknown", `{"unknowns":["input["]}`, "filters/include", sql, 400, "unknowns"},
		{"no Accept", `{}`, "filters/include", "", 400, "missing required header"},
		{"two Accept", `{}`, "filters/include", sql + ", application/json", 400, "multiple headers"},
		{"unknown Accept", `{}`, "filters/include", "application/vnd.opa.sql.oracle+json", 400, "unsupported header"},
		{"linq", `{}`, "filters/include", "application/vnd.opa.ucast.linq+json", 406, "linq"},
		{"AST", `{}`, "filters/include", "application/json", 406, "AST"},
		{"multitarget without targets", `{}`, "filters/include", multiTargetMediaType, 400, "targetDialects"},
		{"multitarget bad target", `{"options":{"targetDialects":["sql+oracle"]}}`, "filters/include", multiTargetMediaType, 400, "sql+oracle"},
		{"quote in path", `{}`, `filters/in"clude`, sql, 400, "invalid path"},
		{"empty path", `{}`, "/", sql, 400, "path"},
		{"wrong types", `{"unknowns":"input.docs"}`, "filters/include", sql, 400, "decoding request"},
	} {
		_, err := decodeCompileRequest([]byte(tc.body), tc.path, tc.accept)
		var ae *compileAPIError
		if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != codeInvalidParameter || !strings.Contains(ae.Message, tc.want) {
			t.Errorf("%s: %v (%+v), want %d with %q", tc.name, err, ae, tc.status, tc.want)
		}
	}
}

func TestDecodeCompileRequest(t *testing.T) {
	req, err := decodeCompileRequest([]byte(`{"input":{"n":1.5},"unknowns":["input.docs"],"options":{"targetSQLTableMappings":{"docs":{"$self":"d"}},"parameterized":true},"extra":"ignored as OPA does"}`),
		"filters/a%20b", "application/vnd.opa.ucast.prisma+json")
	if err != nil {
		t.Fatal(err)
	}
	if req.Query.String() != `data.filters["a b"]` || len(req.Unknowns) != 1 || req.Unknowns[0].String() != "input.docs" ||
		req.Input.String() != `{"n": 1.5}` || !req.Parameterized || req.Targets[0].String() != "ucast+prisma" || req.Multi || req.Mappings["docs"] == nil {
		t.Errorf("parsed %+v", req)
	}
	// An empty body is a request without input or unknowns, as in OPA.
	req, err = decodeCompileRequest(nil, "filters/include", multiTargetMediaType)
	if err == nil || req != nil {
		t.Errorf("multitarget without targets: %v", err)
	}
	if req, err = decodeCompileRequest(nil, "filters/include", "application/vnd.opa.sql.sqlite+json"); err != nil || req.Input != nil || req.Unknowns != nil {
		t.Errorf("empty body: %+v %v", req, err)
	}
}

// The handler refuses other methods and oversized bodies before compiling.
func TestCompileAPIHandlerLimits(t *testing.T) {
	h := compileAPIHandler(nil, nil, nil)
	for _, tc := range []struct {
		method string
		body   string
		status int
	}{
		{http.MethodGet, "", http.StatusMethodNotAllowed},
		{http.MethodPost, `{"input":"` + strings.Repeat("x", maxCompileBody) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		r, _ := http.NewRequest(tc.method, "/v1/compile/filters/include", strings.NewReader(tc.body))
		r.Header.Set("Accept", "application/vnd.opa.sql.sqlite+json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s", tc.method, w.Code, w.Header().Get("Content-Type"))
		}
	}
}

// Before a policy is loaded (a bundle not activated yet), the Compile API
// answers 503, never a filter.
func TestCompileAPIBeforeAPolicy(t *testing.T) {
	e, err := policy.New(context.Background(), policy.Config{Logger: slog.New(slog.DiscardHandler)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := compileAPIHandler(newEngineFilters(e), slog.New(slog.DiscardHandler), nil)
	r := httptest.NewRequest(http.MethodPost, "/v1/compile/filters/include", strings.NewReader(`{"unknowns":["input.docs"]}`))
	r.Header.Set("Accept", "application/vnd.opa.sql.sqlite+json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "result") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}
