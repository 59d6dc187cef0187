package extauthz

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/regoguard/regoguard/policy"
)

// Result is opa-envoy-plugin's answer, read from a decision document.
type Result struct {
	// Allowed is the decision (a boolean decision, or the object's allowed).
	Allowed bool
	// Headers are, when allowed, headers added to the request sent
	// upstream; when denied, headers of the response sent to the client.
	Headers http.Header
	// ResponseHeadersToAdd are added to the client's response when allowed.
	ResponseHeadersToAdd http.Header
	// RequestHeadersToRemove are removed from the request sent upstream
	// when allowed.
	RequestHeadersToRemove []string
	// Body is the body of a denied response; HasBody tells whether the
	// policy gave one.
	Body    string
	HasBody bool
	// HTTPStatus is the status of a denied response; 0 when the policy gave
	// none (403 then, as in opa-envoy-plugin).
	HTTPStatus int
	// DynamicMetadata is handed to Envoy's other filters.
	DynamicMetadata map[string]any
}

// ParseResult is a policy.ResultParser for opa-envoy-plugin's decisions: a
// boolean, or an object whose allowed is a boolean. Any other shape, an
// object without allowed, or a field of the wrong type is an error (the
// request is refused), as in opa-envoy-plugin. The Decision's Status is
// http_status; the object stays in Decision.Result for [ReadResult].
func ParseResult(result any) (policy.Decision, error) {
	r, err := readResult(result)
	if err != nil {
		return policy.Decision{}, err
	}
	return policy.Decision{Allow: r.Allowed, Defined: result != nil, Status: r.HTTPStatus, Result: result}, nil
}

// ReadResult reads d's decision document (Decision.Result) in full.
func ReadResult(d policy.Decision) (Result, error) { return readResult(d.Result) }

func readResult(result any) (Result, error) {
	var r Result
	switch v := result.(type) {
	case nil:
		return r, nil // undefined: denied
	case bool:
		r.Allowed = v
		return r, nil
	case map[string]any:
		allowed, ok := v["allowed"]
		if !ok {
			return r, fmt.Errorf("extauthz: the decision object has no \"allowed\" key")
		}
		if r.Allowed, ok = allowed.(bool); !ok {
			return r, fmt.Errorf("extauthz: decision field \"allowed\" must be a boolean, got %T", allowed)
		}
		var err error
		if r.Headers, err = headerField(v, "headers"); err != nil {
			return r, err
		}
		if r.ResponseHeadersToAdd, err = headerField(v, "response_headers_to_add"); err != nil {
			return r, err
		}
		if r.RequestHeadersToRemove, err = stringList(v, "request_headers_to_remove"); err != nil {
			return r, err
		}
		if b, ok := v["body"]; ok {
			s, ok := b.(string)
			if !ok {
				return r, fmt.Errorf("extauthz: decision field \"body\" must be a string, got %T", b)
			}
			r.Body, r.HasBody = s, true
		}
		if s, ok := v["http_status"]; ok {
			if r.HTTPStatus, err = status(s); err != nil {
				return r, err
			}
		}
		if m, ok := v["dynamic_metadata"]; ok {
			if r.DynamicMetadata, ok = m.(map[string]any); !ok {
				return r, fmt.Errorf("extauthz: decision field \"dynamic_metadata\" must be an object, got %T", m)
			}
		}
		return r, nil
	}
	return r, fmt.Errorf("extauthz: the decision must be a boolean or an object with \"allowed\", got %T", result)
}

// headers reads an object of strings or arrays of strings, or an array of
// such objects, as opa-envoy-plugin does.
func headerField(obj map[string]any, field string) (http.Header, error) {
	v, ok := obj[field]
	if !ok {
		return nil, nil
	}
	h := http.Header{}
	var add func(v any) error
	add = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				switch val := x[k].(type) {
				case string:
					h[k] = append(h[k], val)
				case []any:
					for _, e := range val {
						s, ok := e.(string)
						if !ok {
							return fmt.Errorf("extauthz: decision field %q: header %q: values must be strings, got %T", field, k, e)
						}
						h[k] = append(h[k], s)
					}
				default:
					return fmt.Errorf("extauthz: decision field %q: header %q must be a string or an array of strings, got %T", field, k, val)
				}
			}
			return nil
		case []any:
			for _, e := range x {
				if _, ok := e.(map[string]any); !ok {
					return fmt.Errorf("extauthz: decision field %q must be an object or an array of objects, got an array holding %T", field, e)
				}
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		}
		return fmt.Errorf("extauthz: decision field %q must be an object, got %T", field, v)
	}
	if err := add(v); err != nil {
		return nil, err
	}
	for k, vs := range h {
		for _, s := range vs {
			if strings.ContainsAny(s, "\r\n\x00") || strings.ContainsAny(k, "\r\n\x00: ") || k == "" {
				return nil, fmt.Errorf("extauthz: decision field %q: header %q cannot be sent (a control character or an empty name)", field, k)
			}
		}
	}
	return h, nil
}

func stringList(obj map[string]any, field string) ([]string, error) {
	v, ok := obj[field]
	if !ok {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("extauthz: decision field %q must be an array of strings, got %T", field, v)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("extauthz: decision field %q must be an array of strings, got one %T", field, e)
		}
		out[i] = s
	}
	return out, nil
}

func status(v any) (int, error) {
	var n int64
	switch s := v.(type) {
	case json.Number:
		i, err := s.Int64()
		if err != nil {
			return 0, fmt.Errorf("extauthz: decision field \"http_status\" must be an integer, got %q", s)
		}
		n = i
	case float64:
		n = int64(s)
		if float64(n) != s {
			return 0, fmt.Errorf("extauthz: decision field \"http_status\" must be an integer, got %v", s)
		}
	case int:
		n = int64(s)
	default:
		return 0, fmt.Errorf("extauthz: decision field \"http_status\" must be a number, got %T", v)
	}
	if n < 100 || n > 599 || http.StatusText(int(n)) == "" {
		return 0, fmt.Errorf("extauthz: decision field \"http_status\": %d is not an HTTP status", n)
	}
	return int(n), nil
}

// DeniedStatus is the status of a denied response: the policy's, else 403.
func (r Result) DeniedStatus() int { return cmp.Or(r.HTTPStatus, http.StatusForbidden) }
