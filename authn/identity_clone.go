package authn

// Clone returns a deep copy of id: claims, and the maps and lists within
// them, are copied, so that whoever holds the copy may change it without
// changing id. An authenticator hands each request its own copy of an
// identity it keeps (an API key's, a cached userinfo answer, a session
// loaded once per request), so that a handler editing the identity of its
// request cannot change the identity of another. Clone of nil is nil.
func (id *Identity) Clone() *Identity {
	if id == nil {
		return nil
	}
	c := *id
	c.Claims = cloneClaims(id.Claims)
	return &c
}

// cloneClaims copies claims and every map[string]any, []any and []string
// within them. Other values (strings, numbers, bools) are immutable.
func cloneClaims(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneClaims(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneValue(e)
		}
		return out
	case []string:
		return append([]string(nil), v...)
	default:
		return v
	}
}
