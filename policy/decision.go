package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Decision is the outcome of evaluating the decision document for one input.
//
// A policy may produce a plain boolean (allow or not) or an object:
//
//	{"allow": true, "reason": "owner", "status": 403, "headers": {"X-Why": "..."}}
//
// Only allow is required; anything else in the object is kept in Result.
type Decision struct {
	// Allow is true only when the policy explicitly allowed the request.
	Allow bool
	// Reason is the policy's explanation, safe to show to the caller. An
	// allowed decision has one only with Config.WholeDocument.
	Reason string
	// Status is the HTTP status the policy asks for on a deny (0: the default).
	Status int
	// Headers are response headers the policy asks to be set.
	Headers map[string]string
	// Defined is false when the decision document was undefined (a deny).
	Defined bool
	// Revision identifies the policy that made the decision.
	Revision string
	// Bundles gives the revision of each bundle of that policy, by bundle
	// name, when it came from OPA bundles (see [Policy.Bundles]). It is
	// shared: do not modify it.
	Bundles map[string]string
	// ID identifies this decision in logs; set by the caller that logs it.
	ID string
	// Result is the raw decision document, as JSON-compatible Go values.
	// For an allowed decision on a package it is {"allow": true} unless the
	// Engine evaluates whole documents (see Config.WholeDocument).
	Result any
}

// ParseResult turns a decision document into a Decision. result is what OPA
// returned: a bool, or a map[string]any whose values are bool, string,
// json.Number/float64/int, []any or map[string]any. A nil result means the
// decision was undefined: a deny. Any other shape is an error, since a policy
// that does not say allow or deny cannot be trusted to have meant either.
func ParseResult(result any) (Decision, error) {
	d := Decision{Result: result, Defined: result != nil}
	switch v := result.(type) {
	case nil:
		return d, nil
	case bool:
		d.Allow = v
		return d, nil
	case map[string]any:
		return parseObject(d, v)
	default:
		return Decision{}, fmt.Errorf("policy: decision must be a boolean or an object with \"allow\", got %T", result)
	}
}

func parseObject(d Decision, obj map[string]any) (Decision, error) {
	switch allow := obj["allow"].(type) {
	case bool:
		d.Allow = allow
	case nil:
		// No allow rule fired: deny, as OPA's default for an undefined rule.
	default:
		return Decision{}, fmt.Errorf("policy: decision field \"allow\" must be a boolean, got %T", allow)
	}
	if r, ok := obj["reason"]; ok && r != nil {
		s, ok := r.(string)
		if !ok {
			return Decision{}, fmt.Errorf("policy: decision field \"reason\" must be a string, got %T", r)
		}
		d.Reason = s
	}
	if s, ok := obj["status"]; ok && s != nil {
		status, err := parseStatus(s)
		if err != nil {
			return Decision{}, err
		}
		d.Status = status
	}
	if h, ok := obj["headers"]; ok && h != nil {
		headers, err := parseHeaders(h)
		if err != nil {
			return Decision{}, err
		}
		d.Headers = headers
	}
	return d, nil
}

func parseStatus(v any) (int, error) {
	var n int64
	switch s := v.(type) {
	case json.Number:
		i, err := s.Int64()
		if err != nil {
			return 0, fmt.Errorf("policy: decision field \"status\" must be an integer, got %q", s)
		}
		n = i
	case float64:
		if s != float64(int64(s)) {
			return 0, fmt.Errorf("policy: decision field \"status\" must be an integer, got %v", s)
		}
		n = int64(s)
	case int:
		n = int64(s)
	case int64:
		n = s
	default:
		return 0, fmt.Errorf("policy: decision field \"status\" must be a number, got %T", v)
	}
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("policy: decision field \"status\" must be an HTTP status (100-599), got %d", n)
	}
	return int(n), nil
}

func parseHeaders(v any) (map[string]string, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy: decision field \"headers\" must be an object, got %T", v)
	}
	headers := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		s, ok := obj[k].(string)
		if !ok {
			return nil, fmt.Errorf("policy: decision header %q must be a string, got %T", k, obj[k])
		}
		headers[k] = s
	}
	return headers, nil
}
