package filter

import "fmt"

// Target is what a filter is rendered as: a language ("sql" or "ucast") and
// a dialect or form ("postgresql", "all").
type Target struct {
	Lang    string
	Dialect string
}

// ParseTarget reads a target as the CLI writes it ("sql+postgresql",
// "ucast+all") or as OPA's Accept media type
// ("application/vnd.opa.sql.postgresql+json").
func ParseTarget(s string) (Target, error) {
	return Target{}, fmt.Errorf("filter: unknown target %q", s)
}

// MediaType is the target's media type in OPA's Compile API, such as
// application/vnd.opa.sql.postgresql+json.
func (t Target) MediaType() string { return "application/vnd.opa." + t.Lang + "." + t.Dialect + "+json" }

// String is the target as the CLI writes it, such as "sql+postgresql".
func (t Target) String() string { return t.Lang + "+" + t.Dialect }

// ResponseOptions are a Compile API request's options.
type ResponseOptions struct {
	// Parameterized renders SQL with placeholders and adds "args".
	Parameterized bool
	// Mappings is the request's targetSQLTableMappings.
	Mappings map[string]any
}

// Response returns the body OPA's Compile API (POST /v1/compile/{path})
// answers for t, followed by a newline as OPA writes it:
// {"result":{"query":"WHERE ..."}} for a condition, {"result":{"query":""}}
// (SQL) or {"result":{"query":{}}} (UCAST) for always, and {} for never.
// With opts.Parameterized the result also has "args":[...].
func (f *Filter) Response(t Target, opts ResponseOptions) ([]byte, error) {
	return nil, errTODO
}

// ErrorResponse returns the HTTP status and body OPA's Compile API answers
// for err, a failure of [Compiler.Compile] or of rendering: 400 with
// {"code":"evaluation_error","message":...,"errors":[...]} and each
// untranslatable fragment's location for an *Error, 500 otherwise.
func ErrorResponse(err error) (status int, body []byte) {
	return 500, nil
}
