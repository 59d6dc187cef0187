package filterdiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Query paths and names shared by every case of a corpus.
const (
	// Unknown is the part of the input left unknown: one row of the table.
	Unknown = "input.docs"
	// Table is the SQL table the rows live in; the unknown's last segment,
	// docs, is mapped to it (OPA's targetSQLTableMappings "$self").
	Table = "documents"
)

// Mapping is the table and column mapping every case is translated with, in
// the form of OPA's targetSQLTableMappings for one dialect: the unknown's
// table docs is the SQL table documents, and the field owner is the column
// owner_id. The other fields are columns of their own name.
func Mapping() map[string]any {
	return map[string]any{"docs": map[string]any{"$self": Table, "owner": "owner_id"}}
}

// Kind is the type of a row's field, and of its SQL column.
type Kind int

// The kinds of fields.
const (
	String Kind = iota
	Number
	Bool
)

// Field is a field of a row object and the SQL column that holds it.
type Field struct {
	Name   string // in the row object: input.docs.<Name>
	Column string // in the table
	Kind   Kind
}

// Fields are the fields a row may hold. A field absent from the row object
// is NULL in its column.
var Fields = []Field{
	{"owner", "owner_id", String},
	{"dept", "dept", String},
	{"title", "title", String},
	{"code", "code", String}, // numeric strings: "3", "03", "10", "2.5"
	{"level", "level", Number},
	{"score", "score", Number},
	{"public", "public", Bool},
	{"archived", "archived", Bool},
}

// Schema is the DDL of the table, the same text for SQLite and PostgreSQL:
// typed columns, as an application declares them (SQLite gives BIGINT
// integer affinity, DOUBLE PRECISION real affinity and BOOLEAN numeric
// affinity, and stores booleans as 0 and 1).
const Schema = `CREATE TABLE documents (
	id INTEGER PRIMARY KEY,
	case_id INTEGER NOT NULL,
	owner_id TEXT,
	dept TEXT,
	title TEXT,
	code TEXT,
	level BIGINT,
	score DOUBLE PRECISION,
	public BOOLEAN,
	archived BOOLEAN
);
CREATE INDEX documents_case ON documents (case_id);`

// Edge values the generator draws from, beside the values a case's policy
// names. Strings hold LIKE's metacharacters (% _ \), quotes, mixed case,
// Unicode beyond ASCII (where SQLite's LIKE and lower() stop folding), the
// empty string and strings that look like other types.
var (
	edgeStrings = []string{
		"alice", "Alice", "ALICE", "bob", "Bob", "carol", "O'Brien", "o'brien", "",
		"a%b", "a_b", `a\b`, "%", "_", `\`, "100%", "x_%", "a%", "_b", `a\%`, "ab", "aXb",
		"ñandú", "Ñandú", "ÑANDÚ", "日本語", "日本", "Ærø", "ærø", "straße", "STRASSE", "e\u0301", "é", "🙂",
		"İstanbul", "istanbul", "null", "true", "3", " alice", "alice ", "Al", "al", "hr", "HR",
	}
	edgeDepts   = []string{"hr", "HR", "Hr", "it", "eng", "sales", "", "r&d", "ops_1", "ops%", "opsX1", "Ünit", "ünit", "h_", `h\r`}
	edgeCodes   = []string{"3", "03", "10", "2", "2.5", "-1", "1e3", "", "abc", "007", "30", "3.0"}
	edgeAffixes = []string{
		"a", "A", "al", "AL", "Al", "a%", "a_", `a\`, "%", "_", `\`, "", "ñ", "Ñ", "日", "日本", "O'", "o'",
		"100", "%b", "_b", "b", "B", "ce", "CE", "ú", "Ú", "é", "\u0301", "e", "🙂", "x_", "r&", "ß", "SS",
	}
	edgeLevels = []float64{-1, 0, 1, 2, 3, 5, 10, 100}
	edgeScores = []float64{-1.25, 0, 0.5, 2.5, 3, 3.5, 10, 1000}
	edgeNames  = []string{"alice", "Alice", "bob", "carol", "O'Brien", "ñandú", "dave", "", "a_b", "100%"}
)

// Data is the data document every case's policy may read (data.org), the
// same for the oracle, for regoguard and for OPA's server.
func Data() map[string]any {
	return map[string]any{"org": map[string]any{
		// name → departments the caller may read
		"depts": map[string]any{
			"alice": []any{"hr", "it"}, "Alice": []any{"HR"}, "bob": []any{"eng", "ops_1"},
			"carol": []any{}, "O'Brien": []any{"r&d", "ops%"}, "ñandú": []any{"Ünit", "h_"},
			"a_b": []any{"", "sales"}, "100%": []any{`h\r`, "hr"},
		},
		// name → clearance level
		"clearance": map[string]any{
			"alice": json.Number("3"), "Alice": json.Number("5"), "bob": json.Number("1"), "carol": json.Number("0"),
			"O'Brien": json.Number("10"), "ñandú": json.Number("2.5"), "a_b": json.Number("-1"), "100%": json.Number("100"),
		},
		"public_depts":     []any{"sales", "it", "Ünit"},
		"blocked_prefixes": []any{"tmp", "_", "%", `\`},
		"owners_by_dept":   map[string]any{"hr": []any{"alice", "O'Brien"}, "eng": []any{"bob"}, "it": []any{"Alice", "ñandú"}},
		"flags":            map[string]any{"show_archived": false, "open": true},
	}}
}

// Row is one row of a case: its id in the table and the object the policy
// sees as input.docs. A field absent from Doc is NULL in the table.
type Row struct {
	ID  int
	Doc map[string]any
}

// Case is one (policy, caller, rows) case of the corpus.
type Case struct {
	ID       int
	Name     string // c0001
	Package  string // filters.c0001
	Module   string // the policy's Rego source
	Input    map[string]any
	Rows     []Row
	Features []string // what the policy exercises, sorted
	// Supported is true when every construct of the policy is in the
	// issue's support list: a translator must not refuse the case. Cases
	// that compare a field with a value of another type (TypeMix) or use
	// built-ins beyond the list (Extra) may be refused, never answered
	// wrongly.
	Supported bool
}

// Query is the rule the case filters with.
func (c *Case) Query() string { return "data." + c.Package + ".include" }

// Path is the rule's path in OPA's REST API (/v1/compile/{path}).
func (c *Case) Path() string { return strings.ReplaceAll(c.Package, ".", "/") + "/include" }

// Filename is the name the module is stored under.
func (c *Case) Filename() string { return c.Name + ".rego" }

// Feature names.
const (
	FeatEq       = "=="
	FeatNeq      = "!="
	FeatLt       = "<"
	FeatLte      = "<="
	FeatGt       = ">"
	FeatGte      = ">="
	FeatIn       = "in"
	FeatNotIn    = "not-in"
	FeatStarts   = "startswith"
	FeatEnds     = "endswith"
	FeatContains = "contains"
	FeatBare     = "bare-bool"
	FeatNotExpr  = "not-expr"
	FeatHelper   = "helper-rule"
	FeatNotRule  = "not-helper-rule"
	FeatFunc     = "function"
	FeatSomeIn   = "some-in"
	FeatData     = "data"
	FeatOr       = "or"
	FeatKnown    = "known-only"
	FeatDefault  = "default"
	FeatLocal    = "local-var"
	FeatTypeMix  = "typemix"
	FeatExtra    = "extra"
)

// Generate returns n cases drawn from seed: the same seed, the same corpus.
// Case ids start at first.
func Generate(seed uint64, first, n int) []*Case {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cases := make([]*Case, 0, n)
	rowID := first * 100
	for i := range n {
		c := genCase(r, first+i)
		for j := range c.Rows {
			c.Rows[j].ID = rowID
			rowID++
		}
		cases = append(cases, c)
	}
	return cases
}

// gen holds the state of one case while it is generated.
type gen struct {
	r        *rand.Rand
	user     map[string]any
	helpers  []string
	nhelper  int
	nvar     int
	feats    map[string]bool
	values   map[string][]any // field → values the policy compares it with
	depth    int
	typemix  bool
	extra    bool
	prefixes []string
	locals   []string // local variables bound to input.docs by the current condition
}

func genCase(r *rand.Rand, id int) *Case {
	g := &gen{r: r, feats: map[string]bool{}, values: map[string][]any{}}
	g.user = genUser(r)
	name := fmt.Sprintf("c%04d", id)
	pkg := "filters." + name
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\n\n", pkg)
	if r.IntN(8) == 0 {
		b.WriteString("default include := false\n\n")
		g.feats[FeatDefault] = true
	}
	bodies := 1 + weighted(r, 6, 3, 1)
	if bodies > 1 {
		g.feats[FeatOr] = true
	}
	for range bodies {
		conds := 1 + weighted(r, 5, 4, 2)
		var parts []string
		for range conds {
			parts = append(parts, g.cond())
		}
		fmt.Fprintf(&b, "include if {\n\t%s\n}\n\n", strings.Join(parts, "\n\t"))
	}
	for _, h := range g.helpers {
		b.WriteString(h)
		b.WriteString("\n")
	}
	c := &Case{
		ID: id, Name: name, Package: pkg, Module: b.String(),
		Input: map[string]any{"user": g.user},
	}
	for f := range g.feats {
		c.Features = append(c.Features, f)
	}
	sort.Strings(c.Features)
	c.Supported = !g.typemix && !g.extra
	c.Rows = g.rows()
	return c
}

// weighted returns i with probability weights[i]/sum(weights).
func weighted(r *rand.Rand, weights ...int) int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	n := r.IntN(sum)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func genUser(r *rand.Rand) map[string]any {
	groups := []any{}
	for range r.IntN(4) {
		groups = append(groups, pick(r, edgeDepts))
	}
	return map[string]any{
		"name":      pick(r, edgeNames),
		"dept":      pick(r, edgeDepts),
		"level":     json.Number(strconv.Itoa(int(pick(r, edgeLevels)))),
		"score":     num(pick(r, edgeScores)),
		"clearance": pick(r, edgeCodes), // a numeric string
		"code":      pick(r, edgeCodes),
		"groups":    groups,
		"prefix":    pick(r, edgeAffixes),
		"suffix":    pick(r, edgeAffixes),
		"needle":    pick(r, edgeAffixes),
		"title":     pick(r, edgeStrings),
		"admin":     r.IntN(3) == 0,
		"public":    r.IntN(2) == 0,
	}
}

func num(f float64) json.Number {
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// lit renders a JSON value as a Rego literal.
func lit(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the generator only makes JSON values
	}
	return strings.TrimSpace(buf.String())
}

func (g *gen) note(field string, v any) { g.values[field] = append(g.values[field], v) }

func (g *gen) fieldOf(kinds ...Kind) Field {
	for {
		f := pick(g.r, Fields)
		if slices.Contains(kinds, f.Kind) {
			return f
		}
	}
}

// docRef is how the policy names a field: input.docs.f, rarely through a
// local variable bound to input.docs.
func (g *gen) docRef(f Field) string {
	if g.r.IntN(12) == 0 {
		g.feats[FeatLocal] = true
		g.nvar++
		v := fmt.Sprintf("d%d", g.nvar)
		g.locals = append(g.locals, v)
		return v + "." + f.Name // bound by cond
	}
	return "input.docs." + f.Name
}

// value returns a Rego term of the field's kind the policy compares with: a
// literal, a caller's field, or a data lookup. Rarely (typemix) a value of
// another type.
func (g *gen) value(f Field) string {
	kind := f.Kind
	if g.r.IntN(30) == 0 && kind != Bool {
		g.typemix = true
		g.feats[FeatTypeMix] = true
		if kind == String {
			kind = Number
		} else {
			kind = String
		}
	}
	switch kind {
	case Number:
		switch g.r.IntN(6) {
		case 0:
			return "input.user.level"
		case 1:
			return "input.user.score"
		case 2:
			g.feats[FeatData] = true
			return "data.org.clearance[input.user.name]"
		default:
			var v float64
			if f.Name == "level" {
				v = pick(g.r, edgeLevels)
			} else {
				v = pick(g.r, edgeScores)
			}
			if g.r.IntN(4) == 0 {
				v = pick(g.r, []float64{2.5, 3.0, 0.5, -0.5})
			}
			g.note(f.Name, v)
			return lit(num(v))
		}
	case Bool:
		if g.r.IntN(3) == 0 {
			return "input.user." + pick(g.r, []string{"admin", "public"})
		}
		return pick(g.r, []string{"true", "false"})
	default:
		switch g.r.IntN(7) {
		case 0:
			return "input.user." + pick(g.r, []string{"name", "dept", "title"})
		case 1:
			return "input.user." + pick(g.r, []string{"code", "clearance"})
		case 2:
			g.feats[FeatData] = true
			return pick(g.r, []string{"data.org.public_depts[0]", `data.org.owners_by_dept[input.user.dept][0]`})
		default:
			v := g.stringFor(f)
			g.note(f.Name, v)
			return lit(v)
		}
	}
}

func (g *gen) stringFor(f Field) string {
	switch f.Name {
	case "dept":
		return pick(g.r, edgeDepts)
	case "code":
		return pick(g.r, edgeCodes)
	case "owner":
		return pick(g.r, edgeNames)
	}
	return pick(g.r, edgeStrings)
}

// affix returns a Rego term for the second argument of startswith,
// endswith or contains.
func (g *gen) affix(f Field) string {
	switch g.r.IntN(5) {
	case 0:
		return "input.user." + pick(g.r, []string{"prefix", "suffix", "needle"})
	case 1:
		g.feats[FeatData] = true
		return "data.org.blocked_prefixes[" + strconv.Itoa(g.r.IntN(4)) + "]"
	default:
		v := pick(g.r, edgeAffixes)
		g.prefixes = append(g.prefixes, v)
		g.note(f.Name, v)
		return lit(v)
	}
}

// collection returns a Rego term for a known collection of the field's kind.
func (g *gen) collection(f Field) string {
	switch f.Kind {
	case Number:
		var xs []any
		for range g.r.IntN(4) {
			v := pick(g.r, edgeLevels)
			g.note(f.Name, v)
			xs = append(xs, num(v))
		}
		if g.r.IntN(12) == 0 {
			g.typemix, g.feats[FeatTypeMix] = true, true
			xs = append(xs, "3")
		}
		return g.setOrArray(xs)
	case Bool:
		return g.setOrArray([]any{pick(g.r, []any{true, false})})
	}
	switch g.r.IntN(6) {
	case 0:
		return "input.user.groups"
	case 1:
		g.feats[FeatData] = true
		return "data.org.depts[input.user.name]"
	case 2:
		g.feats[FeatData] = true
		return "data.org.public_depts"
	}
	var xs []any
	for range g.r.IntN(4) {
		v := g.stringFor(f)
		g.note(f.Name, v)
		xs = append(xs, v)
	}
	if f.Name == "code" && g.r.IntN(6) == 0 {
		g.typemix, g.feats[FeatTypeMix] = true, true
		xs = append(xs, json.Number("3"))
	}
	return g.setOrArray(xs)
}

func (g *gen) setOrArray(xs []any) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = lit(x)
	}
	if g.r.IntN(2) == 0 {
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if len(parts) == 0 {
		return "set()"
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

var cmpOps = []string{"==", "!=", "<", "<=", ">", ">="}

// atom returns a condition on the row with no not, helper or function: a
// comparison, a membership, a string test or a bare boolean.
func (g *gen) atom() string {
	switch weighted(g.r, 8, 3, 3, 2) {
	case 0: // comparison
		f := g.fieldOf(String, Number, Bool)
		op := pick(g.r, cmpOps)
		if f.Kind == Bool {
			op = pick(g.r, []string{"==", "!="})
		}
		g.feats[op] = true
		ref, val := g.docRef(f), g.value(f)
		if g.r.IntN(4) == 0 && !strings.HasPrefix(val, "-") {
			// reversed operands: v < input.docs.f (never a line that
			// starts with a minus: Rego reads it as the previous line's
			// subtraction)
			return val + " " + op + " " + ref
		}
		return ref + " " + op + " " + val
	case 1: // membership
		f := g.fieldOf(String, String, Number)
		g.feats[FeatIn] = true
		return g.docRef(f) + " in " + g.collection(f)
	case 2: // string test
		f := g.fieldOf(String)
		fn := pick(g.r, []string{"startswith", "endswith", "contains"})
		g.feats[fn] = true
		return fmt.Sprintf("%s(%s, %s)", fn, g.docRef(f), g.affix(f))
	default: // bare boolean
		g.feats[FeatBare] = true
		return g.docRef(g.fieldOf(Bool))
	}
}

// cond returns one condition of a body.
func (g *gen) cond() string {
	kinds := []int{10, 3, 3, 3, 2, 3, 1, 1}
	if g.depth > 0 { // no deeper than one level of helpers
		kinds = []int{10, 3, 3, 0, 0, 2, 0, 1}
	}
	var expr string
	switch weighted(g.r, kinds...) {
	case 0:
		expr = g.atom()
	case 1: // not in
		f := g.fieldOf(String, Number)
		g.feats[FeatNotIn] = true
		expr = "not " + g.docRef(f) + " in " + g.collection(f)
	case 2: // not over an expression
		g.feats[FeatNotExpr] = true
		expr = "not " + g.atom()
	case 3: // helper rule, maybe negated
		expr = g.helperRule()
	case 4: // function
		expr = g.function()
	case 5: // some … in a known collection
		expr = g.someIn()
	case 6: // known-only
		g.feats[FeatKnown] = true
		expr = pick(g.r, []string{"input.user.admin", "not input.user.admin", "input.user.level >= 3",
			`input.user.dept in data.org.public_depts`, "data.org.flags.open", "not data.org.flags.show_archived"})
	default:
		expr = g.extraCond()
	}
	for _, v := range g.locals {
		expr = v + " := input.docs\n\t" + expr
	}
	g.locals = g.locals[:0]
	return expr
}

func (g *gen) helperRule() string {
	g.nhelper++
	name := fmt.Sprintf("h%d", g.nhelper)
	g.depth++
	var b strings.Builder
	for range 1 + weighted(g.r, 3, 1) {
		var parts []string
		for range 1 + weighted(g.r, 3, 1) {
			parts = append(parts, g.cond())
		}
		fmt.Fprintf(&b, "%s if {\n\t%s\n}\n", name, strings.Join(parts, "\n\t"))
	}
	g.depth--
	g.helpers = append(g.helpers, b.String())
	if g.r.IntN(2) == 0 {
		g.feats[FeatNotRule] = true
		return "not " + name
	}
	g.feats[FeatHelper] = true
	return name
}

func (g *gen) function() string {
	g.feats[FeatFunc] = true
	g.nhelper++
	name := fmt.Sprintf("f%d", g.nhelper)
	f := g.fieldOf(String, Number)
	var b strings.Builder
	for range 1 + weighted(g.r, 3, 1) {
		var body string
		switch {
		case f.Kind == String && g.r.IntN(2) == 0:
			fn := pick(g.r, []string{"startswith", "endswith", "contains"})
			g.feats[fn] = true
			body = fmt.Sprintf("%s(x, %s)", fn, g.affix(f))
		default:
			op := pick(g.r, cmpOps)
			g.feats[op] = true
			body = "x " + op + " " + g.value(f)
		}
		fmt.Fprintf(&b, "%s(x) if {\n\t%s\n}\n", name, body)
	}
	g.helpers = append(g.helpers, b.String())
	call := fmt.Sprintf("%s(input.docs.%s)", name, f.Name)
	if g.r.IntN(4) == 0 {
		g.feats[FeatNotExpr] = true
		return "not " + call
	}
	return call
}

func (g *gen) someIn() string {
	g.feats[FeatSomeIn] = true
	g.nvar++
	v := fmt.Sprintf("v%d", g.nvar)
	switch g.r.IntN(4) {
	case 0: // over a data object: key and value
		g.feats[FeatData] = true
		k := fmt.Sprintf("k%d", g.nvar)
		return fmt.Sprintf("some %s, %s in data.org.clearance\n\tinput.docs.owner == %s\n\tinput.docs.level %s %s",
			k, v, k, pick(g.r, []string{"<=", "<", ">=", "=="}), v)
	case 1:
		f := g.fieldOf(String)
		fn := pick(g.r, []string{"startswith", "endswith", "contains"})
		g.feats[fn] = true
		coll := pick(g.r, []string{"input.user.groups", "data.org.blocked_prefixes", `["a", "%", "_", "Ñ"]`})
		if strings.HasPrefix(coll, "data") {
			g.feats[FeatData] = true
		}
		expr := fmt.Sprintf("some %s in %s\n\t%s(input.docs.%s, %s)", v, coll, fn, f.Name, v)
		if g.r.IntN(3) == 0 {
			g.feats[FeatNotExpr] = true
			return fmt.Sprintf("some %s in %s\n\tnot %s(input.docs.%s, %s)", v, coll, fn, f.Name, v)
		}
		return expr
	default:
		f := g.fieldOf(String, Number)
		coll := g.collection(f)
		op := pick(g.r, []string{"==", "==", "!=", "<", ">="})
		g.feats[op] = true
		return fmt.Sprintf("some %s in %s\n\tinput.docs.%s %s %s", v, coll, f.Name, op, v)
	}
}

// extraCond returns a condition beyond the support list: a
// translator may refuse it, never answer it wrongly.
func (g *gen) extraCond() string {
	g.extra = true
	g.feats[FeatExtra] = true
	return pick(g.r, []string{
		`lower(input.docs.title) == "alice"`,
		`upper(input.docs.dept) == "HR"`,
		`count(input.docs.title) > 3`,
		`input.docs.level + 1 > 3`,
		`input.docs.level * 2 >= input.docs.score`,
		`input.docs.title == input.docs.owner`,
		`input.docs.level < input.docs.score`,
		`regex.match("^a.b$", input.docs.title)`,
		`glob.match("a*", [], input.docs.title)`,
		`abs(input.docs.level) > 2`,
		`input.docs.dept == input.user.groups[_]`,
		`sprintf("%s-%s", [input.docs.dept, input.docs.owner]) == "hr-alice"`,
		`is_string(input.docs.code)`,
	})
}

// rows draws a case's rows: each field absent one time in five, or a value
// the policy names, or an edge value of its kind.
func (g *gen) rows() []Row {
	n := 8 + g.r.IntN(9)
	rows := make([]Row, n)
	for i := range rows {
		doc := map[string]any{}
		for _, f := range Fields {
			if g.r.IntN(5) == 0 {
				continue // absent: NULL
			}
			doc[f.Name] = g.rowValue(f)
		}
		rows[i] = Row{Doc: doc}
	}
	return rows
}

func (g *gen) rowValue(f Field) any {
	named := g.values[f.Name]
	if len(named) > 0 && g.r.IntN(2) == 0 {
		v := pick(g.r, named)
		switch x := v.(type) {
		case float64:
			if f.Kind == Number && (f.Name != "level" || x == math.Trunc(x)) {
				return num(x)
			}
		case string:
			if f.Kind == String {
				// a value the policy names, or one that starts, ends with
				// or holds it, or the same in another case
				switch g.r.IntN(5) {
				case 0:
					return x + pick(g.r, []string{"x", "%", "_", "É", ""})
				case 1:
					return pick(g.r, []string{"x", "%", "_", "é", ""}) + x
				case 2:
					return strings.ToUpper(x)
				}
				return x
			}
		}
	}
	user := g.user
	switch f.Kind {
	case Bool:
		return g.r.IntN(2) == 0
	case Number:
		switch g.r.IntN(5) {
		case 0:
			return user["level"]
		case 1:
			if f.Name == "score" {
				return user["score"]
			}
		}
		if f.Name == "level" {
			return num(pick(g.r, edgeLevels))
		}
		return num(pick(g.r, edgeScores))
	}
	switch g.r.IntN(6) {
	case 0:
		return user[pick(g.r, []string{"name", "dept", "title", "code", "clearance"})].(string)
	case 1:
		if groups := user["groups"].([]any); len(groups) > 0 {
			return pick(g.r, groups).(string)
		}
	case 2:
		p := user[pick(g.r, []string{"prefix", "suffix", "needle"})].(string)
		return pick(g.r, []string{p + "z", "z" + p, "z" + p + "z", p})
	}
	return g.stringFor(f)
}
