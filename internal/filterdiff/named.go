package filterdiff

import (
	"encoding/json"
	"strings"
)

// namedCase is a hand-written case: a wrong filter once found, or an edge
// worth a name of its own in the test output.
type namedCase struct {
	name      string
	rules     string
	user      map[string]any
	rows      []map[string]any
	features  []string
	supported bool
}

// namedCases are checked beside the generated corpus, under their names.
var namedCases = []namedCase{
	{
		name: "not_in_empty_set_absent_field", supported: true, features: []string{FeatNotIn},
		rules: "include if not input.docs.level in set()",
		rows:  []map[string]any{{}, {"level": n("3")}},
	},
	{
		name: "not_in_empty_caller_array_absent_field", supported: true, features: []string{FeatNotIn},
		rules: "include if not input.docs.dept in input.user.groups",
		user:  map[string]any{"groups": []any{}},
		rows:  []map[string]any{{}, {"dept": "hr"}},
	},
	{
		name: "not_function_absent_argument", supported: true, features: []string{FeatFunc, FeatNotExpr},
		rules: "f(x) if x == 10\n\ninclude if not f(input.docs.level)",
		rows:  []map[string]any{{}, {"level": n("10")}, {"level": n("3")}},
	},
	{
		name: "not_helper_rule_absent_field", supported: true, features: []string{FeatNotRule},
		rules: "h if input.docs.level == 10\n\ninclude if not h",
		rows:  []map[string]any{{}, {"level": n("10")}, {"level": n("3")}},
	},
	{
		name: "non_integer_against_integer_column", supported: true, features: []string{FeatGte, FeatNeq},
		rules: "include if input.docs.level >= 2.5\n\ninclude if {\n\tinput.docs.level != 0.5\n\tinput.docs.public\n}",
		rows:  []map[string]any{{"level": n("2")}, {"level": n("3")}, {"level": n("0"), "public": true}, {}},
	},
	{
		name: "caller_number_against_integer_column", supported: true, features: []string{FeatLt},
		rules: "include if input.docs.level < input.user.score",
		user:  map[string]any{"score": n("2.5")},
		rows:  []map[string]any{{"level": n("2")}, {"level": n("3")}, {}},
	},
	{
		name: "column_against_column", supported: false, features: []string{FeatExtra},
		rules: "include if input.docs.level < input.docs.score",
		rows:  []map[string]any{{"level": n("2"), "score": n("2.5")}, {"level": n("3"), "score": n("2.5")}, {"level": n("3")}},
	},
	{
		name: "default_false", supported: true, features: []string{FeatDefault, FeatEq},
		rules: "default include := false\n\ninclude if input.docs.dept == \"hr\"",
		rows:  []map[string]any{{"dept": "hr"}, {"dept": "HR"}, {}},
	},
	{
		name: "not_equal_absent_field", supported: true, features: []string{FeatNotExpr, FeatEq},
		rules: "include if not input.docs.dept == \"hr\"",
		rows:  []map[string]any{{"dept": "hr"}, {"dept": "it"}, {}},
	},
	{
		name: "not_bare_boolean_absent_field", supported: true, features: []string{FeatBare, FeatNotExpr},
		rules: "include if not input.docs.archived",
		rows:  []map[string]any{{"archived": true}, {"archived": false}, {}},
	},
	{
		name: "startswith_like_metacharacters", supported: true, features: []string{FeatStarts},
		rules: "include if startswith(input.docs.title, \"a_%\\\\\")",
		rows:  []map[string]any{{"title": `a_%\b`}, {"title": `aX%\b`}, {"title": `a_%Xb`}, {"title": `A_%\b`}, {"title": "a_"}},
	},
	{
		name: "contains_mixed_case", supported: true, features: []string{FeatContains},
		rules: "include if contains(input.docs.title, \"al\")",
		rows:  []map[string]any{{"title": "ALICE"}, {"title": "alice"}, {"title": "Al"}, {"title": ""}},
	},
	{
		name: "endswith_unicode_case", supported: true, features: []string{FeatEnds},
		rules: "include if endswith(input.docs.title, \"dú\")",
		rows:  []map[string]any{{"title": "ñandú"}, {"title": "ÑANDÚ"}, {"title": "ñanDú"}, {"title": "du"}},
	},
	{
		name: "quote_in_value", supported: true, features: []string{FeatEq, FeatIn},
		rules: "include if input.docs.owner == \"O'Brien\"\n\ninclude if input.docs.dept in {\"x'); DROP TABLE documents; --\"}",
		rows:  []map[string]any{{"owner": "O'Brien"}, {"owner": "o'brien"}, {"dept": "x'); DROP TABLE documents; --"}},
	},
	{
		name: "numeric_strings_compare_as_strings", supported: true, features: []string{FeatLt},
		rules: "include if input.docs.code < \"10\"",
		rows:  []map[string]any{{"code": "3"}, {"code": "03"}, {"code": "10"}, {"code": "1e3"}, {"code": ""}},
	},
	{
		name: "empty_prefix_and_empty_string", supported: true, features: []string{FeatStarts, FeatEq},
		rules: "include if {\n\tstartswith(input.docs.title, input.user.prefix)\n\tinput.docs.dept != \"\"\n}",
		user:  map[string]any{"prefix": ""},
		rows:  []map[string]any{{"title": "", "dept": "x"}, {"title": "a", "dept": ""}, {"dept": "x"}, {"title": "b", "dept": "y"}},
	},
	{
		// d := input.docs binds the row, which is always defined: not
		// d.archived is true when archived is absent, as for
		// not input.docs.archived (unlike x := input.docs.x; not x).
		name: "row_variable_not_field_absent", supported: true, features: []string{FeatLocal, FeatBare, FeatNotExpr},
		rules: "include if {\n\td := input.docs\n\tnot d.archived\n}",
		rows:  []map[string]any{{"archived": true}, {"archived": false}, {}},
	},
	{
		name: "row_variable_in_negated_helper_absent", supported: true, features: []string{FeatLocal, FeatNotRule},
		rules: "h if {\n\td := input.docs\n\td.archived\n}\n\ninclude if not h",
		rows:  []map[string]any{{"archived": true}, {"archived": false}, {}},
	},
	{
		name: "row_variable_negated_call_absent", supported: true, features: []string{FeatLocal, FeatEq, FeatNotExpr},
		rules: "include if {\n\td := input.docs\n\tnot d.level == 1\n}",
		rows:  []map[string]any{{"level": n("1")}, {"level": n("2")}, {}},
	},
	{
		name: "row_variable_negated_ne_absent", supported: true, features: []string{FeatLocal, FeatNeq, FeatNotExpr},
		rules: "include if {\n\td := input.docs\n\tnot d.level != 1\n}",
		rows:  []map[string]any{{"level": n("1")}, {"level": n("2")}, {}},
	},
	{
		name: "row_variable_negated_startswith_absent", supported: true, features: []string{FeatLocal, FeatStarts, FeatNotExpr},
		rules: "include if {\n\td := input.docs\n\tnot startswith(d.title, \"a\")\n}",
		rows:  []map[string]any{{"title": "ab"}, {"title": "b"}, {}},
	},
	{
		name: "row_variable_beside_direct_field_absent", supported: true, features: []string{FeatLocal, FeatEq, FeatNotExpr},
		rules: "include if {\n\td := input.docs\n\tnot d.level == input.docs.score\n}",
		rows:  []map[string]any{{"level": n("1"), "score": n("1")}, {"level": n("1"), "score": n("2")}, {"score": n("2")}, {"level": n("1")}, {}},
	},
	{
		name: "number_text_against_number_column", supported: false, features: []string{FeatNotIn, FeatTypeMix},
		rules: "include if not input.docs.level in {\"3\"}",
		rows:  []map[string]any{{"level": n("3")}, {"level": n("2")}, {}},
	},
	{
		name: "number_against_text_column", supported: false, features: []string{FeatEq, FeatTypeMix},
		rules: "include if input.docs.code == 3",
		rows:  []map[string]any{{"code": "3"}, {"code": "03"}, {}},
	},
	{
		name: "field_variable_not_absent", supported: true, features: []string{FeatLocal, FeatNotExpr},
		rules: "include if {\n\tx := input.docs.level\n\tnot x == 1\n}",
		rows:  []map[string]any{{"level": n("1")}, {"level": n("2")}, {}},
	},
	{
		name: "boolean_equals_caller_field", supported: true, features: []string{FeatEq, FeatBare},
		rules: "include if input.docs.public == input.user.public",
		user:  map[string]any{"public": false},
		rows:  []map[string]any{{"public": false}, {"public": true}, {}},
	},
}

func n(s string) json.Number { return json.Number(s) }

// Named returns the named cases, with ids from first on.
func Named(first int) []*Case {
	cases := make([]*Case, 0, len(namedCases))
	rowID := first * 100
	for i, nc := range namedCases {
		user := nc.user
		if user == nil {
			user = map[string]any{}
		}
		c := &Case{
			ID: first + i, Name: nc.name, Package: "filters.named." + nc.name,
			Input: map[string]any{"user": user}, Features: nc.features, Supported: nc.supported,
		}
		c.Module = "package " + c.Package + "\n\n" + strings.TrimSpace(nc.rules) + "\n"
		for _, doc := range nc.rows {
			c.Rows = append(c.Rows, Row{ID: rowID, Doc: doc})
			rowID++
		}
		cases = append(cases, c)
	}
	return cases
}
