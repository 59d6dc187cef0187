package pipeline

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// Pre-built terms: the same *ast.Term for every request. Terms are never
// modified once in an input, so sharing them is safe.
var (
	keyAuthenticated = ast.StringTerm("authenticated")
	keyMethod        = ast.StringTerm("method")
	keySub           = ast.StringTerm("sub")
	keyClaims        = ast.StringTerm("claims")
	// KeyToken is the key of the raw token (user.token; token in the
	// fastapi-opa layout).
	KeyToken        = ast.StringTerm("token")
	trueTerm        = ast.BooleanTerm(true)
	falseTerm       = ast.BooleanTerm(false)
	authMethodTerms = func() map[string]*ast.Term {
		m := map[string]*ast.Term{}
		for _, meth := range []string{authn.MethodOIDC, authn.MethodAPIKey, authn.MethodHeader, authn.MethodNone, authn.MethodSAML} {
			m[meth] = ast.StringTerm(meth)
		}
		return m
	}()
)

// SharedTerm returns the term of s in shared, or spare holding s.
func SharedTerm(shared map[string]*ast.Term, s string, spare *ast.Term) *ast.Term {
	if t, ok := shared[s]; ok {
		return t
	}
	spare.Value = ast.String(s)
	return spare
}

// UserObject returns input.user for id (nil: an anonymous caller), holding
// only what fields reads of it (all when nil): a token's many claims cost
// nothing when the policy reads one. preserveToken adds the raw token.
// Every front end builds input.user with it, so that a policy written on
// it judges HTTP requests and gRPC calls alike.
func UserObject(id *authn.Identity, fields *policy.InputFields, preserveToken bool) (ast.Object, error) {
	anonymous := id == nil
	if anonymous {
		id = &authn.Identity{Method: authn.MethodNone}
	}
	v := make([]ast.Term, 4)
	items := make([][2]*ast.Term, 0, 5)
	if fields.Reads("authenticated") {
		authenticated := trueTerm
		if id.Method == authn.MethodNone {
			authenticated = falseTerm
		}
		items = append(items, [2]*ast.Term{keyAuthenticated, authenticated})
	}
	if fields.Reads("method") {
		items = append(items, [2]*ast.Term{keyMethod, SharedTerm(authMethodTerms, id.Method, &v[0])})
	}
	if !anonymous && fields.Reads("sub") {
		v[1].Value = ast.String(id.Subject)
		items = append(items, [2]*ast.Term{keySub, &v[1]})
	}
	if fields.Reads("claims") {
		claims, err := ClaimsObject(id.Claims, fields.Under("claims"))
		if err != nil {
			return nil, err
		}
		v[2].Value = claims
		items = append(items, [2]*ast.Term{keyClaims, &v[2]})
	}
	if preserveToken && id.Token != "" && fields.Reads("token") {
		v[3].Value = ast.String(id.Token)
		items = append(items, [2]*ast.Term{KeyToken, &v[3]})
	}
	return ast.NewObject(items...), nil
}

// ClaimsObject converts the claims that fields reads (all when nil).
func ClaimsObject(claims map[string]any, fields *policy.InputFields) (ast.Object, error) {
	if len(claims) == 0 {
		return ast.NewObject(), nil
	}
	items := make([][2]*ast.Term, 0, len(claims))
	terms := make([]ast.Term, 2*len(claims))
	for k, v := range claims {
		if !fields.Reads(k) {
			continue
		}
		val, err := ToValue(v)
		if err != nil {
			return nil, fmt.Errorf("identity claim %q: %w", k, err)
		}
		i := 2 * len(items)
		terms[i].Value, terms[i+1].Value = ast.String(k), val
		items = append(items, [2]*ast.Term{&terms[i], &terms[i+1]})
	}
	return ast.NewObject(items...), nil
}

// ToValue converts the JSON-like values that claims and enrichers hold
// straight into OPA values; ast.InterfaceToValue, the fallback for any other
// type, goes through reflection, which costs more than the policy on small
// policies.
func ToValue(v any) (ast.Value, error) {
	switch x := v.(type) {
	case nil:
		return ast.Null{}, nil
	case ast.Value:
		return x, nil
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case json.Number:
		return ast.Number(x), nil
	case float64:
		return ast.FloatNumberTerm(x).Value, nil
	case int:
		return ast.IntNumberTerm(x).Value, nil
	case []string:
		terms := make([]*ast.Term, len(x))
		for i, s := range x {
			terms[i] = ast.StringTerm(s)
		}
		return ast.NewArray(terms...), nil
	case []any:
		// One block for the terms.
		terms := make([]ast.Term, len(x))
		ptrs := make([]*ast.Term, len(x))
		for i, e := range x {
			val, err := ToValue(e)
			if err != nil {
				return nil, err
			}
			terms[i].Value, ptrs[i] = val, &terms[i]
		}
		return ast.NewArray(ptrs...), nil
	case map[string]any:
		return ClaimsObject(x, nil)
	}
	return ast.InterfaceToValue(v)
}
