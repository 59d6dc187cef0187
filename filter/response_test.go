package filter

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestResponseBodies: the bodies OPA's Compile API writes (its JSON
// encoder escapes <, > and &), and with "args" when parameterized.
func TestResponseBodies(t *testing.T) {
	c, _ := newTestCompiler(t, "include if input.docs.owner == input.user\ninclude if input.docs.level > 2", nil)
	f, err := c.Compile(context.Background(), ast.MustParseTerm(`{"user": "<a&b>"}`).Value)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target string
		opts   ResponseOptions
		want   string
	}{
		{"application/vnd.opa.sql.postgresql+json", ResponseOptions{}, `{"result":{"query":"WHERE (docs.owner = E'\u003ca\u0026b\u003e' OR docs.level \u003e 2)"}}`},
		{"sql+postgresql", ResponseOptions{Parameterized: true}, `{"result":{"query":"WHERE (docs.owner = $1 OR docs.level \u003e $2)","args":["\u003ca\u0026b\u003e",2]}}`},
		{"sql+sqlserver", ResponseOptions{Parameterized: true, Mappings: map[string]any{"docs": map[string]any{"$self": "documents"}}},
			`{"result":{"query":"WHERE (documents.owner = @p1 OR documents.level \u003e @p2)","args":["\u003ca\u0026b\u003e",2]}}`},
		{"ucast+minimal", ResponseOptions{}, `{"result":{"query":{"operator":"or","type":"compound","value":[{"field":"docs.owner","operator":"eq","type":"field","value":"\u003ca\u0026b\u003e"},{"field":"docs.level","operator":"gt","type":"field","value":2}]}}}`},
	} {
		tg, err := ParseTarget(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.Response(tg, tc.opts)
		if err != nil || string(b) != tc.want+"\n" {
			t.Errorf("%s %+v:\n got %s %v\nwant %s", tc.target, tc.opts, b, err, tc.want)
		}
	}
	for _, bad := range []string{"sql+oracle", "ucast+linq", "application/json", "sql", ""} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}
