package authz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"

	gql "github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// An Enricher adds a field of its own to the policy input, like fastapi-opa's
// injectables: Func's result is placed under Key. It is not run for paths
// that match one of Skip (each matched against the whole path).
//
// Func receives the request and, when NeedsBody is set, its body (bounded by
// Config.MaxBodyBytes; the handler still reads all of it). It returns
// JSON-compatible Go values or an OPA ast.Value. An error wrapping
// ErrBadRequest refuses the request with 400 and the error's message; any
// other error refuses it with 503, as any failure to decide does.
type Enricher struct {
	Key       string
	Skip      []*regexp.Regexp
	NeedsBody bool
	Func      func(r *http.Request, body []byte) (any, error)
}

func (e Enricher) skips(path string) bool {
	for _, re := range e.Skip {
		if matchesWhole(re, path) {
			return true
		}
	}
	return false
}

// matchesWhole reports whether re matches all of s, not just a prefix or a
// part of it: fastapi-opa's re.match let the skip pattern /docs skip
// /docs-admin too.
func matchesWhole(re *regexp.Regexp, s string) bool {
	loc := re.FindStringIndex(s)
	return loc != nil && loc[0] == 0 && loc[1] == len(s)
}

// GraphQLEnricher returns an Enricher that parses a GraphQL request body
// ({"query": "...", ...}) and adds, under key ("gql_info" when empty), one
// object per operation in fastapi-opa's shape:
//
//	{"name": "GetUser", "operation": "query",
//	 "variables": {"id": "ID", "ids": "[ID]"},
//	 "selection_set": [["user", ["id", "name"]]]}
//
// As in fastapi-opa, variable types drop non-null markers and name the
// innermost type of a list once. A body that is not JSON, or a query that is
// not valid GraphQL, refuses the request with 400 when the enricher runs:
// with the in-process engine, only if the policy reads input.<key> (see
// policy.Plan). A body with no query string gives an empty list.
func GraphQLEnricher(key string) Enricher {
	if key == "" {
		key = "gql_info"
	}
	return Enricher{Key: key, NeedsBody: true, Func: graphQLInfo}
}

func graphQLInfo(_ *http.Request, body []byte) (any, error) {
	ops := []any{}
	if len(bytes.TrimSpace(body)) == 0 {
		return ops, nil
	}
	var payload map[string]any
	if err := json.Unmarshal(body, &payload); err != nil {
		return nil, fmt.Errorf("%w: GraphQL body is not a JSON object: %v", ErrBadRequest, err)
	}
	query, ok := payload["query"].(string)
	if !ok {
		return ops, nil
	}
	doc, err := parser.ParseQuery(&gql.Source{Name: "query", Input: query})
	if err != nil {
		return nil, fmt.Errorf("%w: query is not valid GraphQL: %v", ErrBadRequest, err)
	}
	for _, op := range doc.Operations {
		vars := map[string]any{}
		for _, v := range op.VariableDefinitions {
			vars[v.Variable] = graphQLType(v.Type, "%s")
		}
		ops = append(ops, map[string]any{
			"name":          op.Name,
			"operation":     string(op.Operation),
			"variables":     vars,
			"selection_set": []any{selectionSet(op.SelectionSet)},
		})
	}
	return ops, nil
}

// graphQLType renders a variable type the way fastapi-opa does: a list
// becomes "[T]" around its innermost named type, non-null is dropped.
func graphQLType(t *gql.Type, format string) string {
	if t.Elem != nil {
		return graphQLType(t.Elem, "[%s]")
	}
	return fmt.Sprintf(format, t.NamedType)
}

// selectionSet lists field names, each followed by the list of its own
// selection when it has one; fragments are left out, as in fastapi-opa.
func selectionSet(set gql.SelectionSet) []any {
	out := []any{}
	for _, sel := range set {
		f, ok := sel.(*gql.Field)
		if !ok {
			continue
		}
		out = append(out, f.Name)
		if len(f.SelectionSet) > 0 {
			out = append(out, selectionSet(f.SelectionSet))
		}
	}
	return out
}
