package filter

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/huandu/go-sqlbuilder"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Dialect is a SQL dialect.
type Dialect string

// The SQL dialects, named as in OPA's media types.
const (
	PostgreSQL Dialect = "postgresql"
	MySQL      Dialect = "mysql"
	SQLite     Dialect = "sqlite"
	SQLServer  Dialect = "sqlserver"
)

func (d Dialect) flavor() (sqlbuilder.Flavor, error) {
	switch d {
	case PostgreSQL:
		return sqlbuilder.PostgreSQL, nil
	case MySQL:
		return sqlbuilder.MySQL, nil
	case SQLite:
		return sqlbuilder.SQLite, nil
	case SQLServer:
		return sqlbuilder.SQLServer, nil
	}
	return 0, fmt.Errorf("filter: unknown SQL dialect %q (postgresql, mysql, sqlite, sqlserver)", string(d))
}

// SQLOptions controls how a filter is rendered as SQL.
type SQLOptions struct {
	// Parameterized puts values in Args with the dialect's placeholders
	// ($1 on PostgreSQL, ? on MySQL and SQLite, @p1 on SQL Server) instead
	// of inlining them as OPA's Compile API does.
	Parameterized bool
	// ArgOffset numbers the placeholders after this many arguments the
	// caller's statement already has ($3 for the first when ArgOffset is
	// 2); it changes nothing for the dialects whose placeholder is ?.
	ArgOffset int
	// Mappings renames tables and columns with OPA's
	// targetSQLTableMappings semantics: {"docs": {"$self": "documents",
	// "owner": "owner_id"}}, optionally keyed first by dialect
	// ("postgresql") or by target ("sql").
	Mappings map[string]any
}

// SQL is a rendered condition.
type SQL struct {
	// Where is "WHERE <condition>", "" for a filter that selects every
	// row, and "WHERE 0 = 1" (as OPA writes an empty IN) for one that selects none.
	Where string
	// Args are the values of the placeholders, in order: string, int64,
	// float64 or bool. Nil when inlined.
	Args []any
}

// never is the WHERE clause of a filter that selects no row, in every
// dialect (SQL Server has no FALSE).
const never = "WHERE 0 = 1"

// SQL renders the filter for dialect. A condition the dialect cannot
// express is an *Error.
func (f *Filter) SQL(dialect Dialect, opts SQLOptions) (SQL, error) {
	flavor, err := dialect.flavor()
	if err != nil {
		return SQL{}, err
	}
	switch {
	case f.always:
		return SQL{}, nil
	case f.never:
		return SQL{Where: never}, nil
	}
	if opts.ArgOffset >= 0 && opts.ArgOffset < 8 {
		// A few offsets and mappings at most, so that the kept texts
		// stay bounded.
		var b strings.Builder
		if opts.Mappings == nil || canonicalMappings(&b, opts.Mappings, 0) {
			key := sqlKey{dialect, opts.Parameterized, opts.ArgOffset, b.String()}
			if q, ok := f.rendered.Load(key); ok {
				return q.(SQL).clone(), nil
			}
			q, err := f.render(dialect, flavor, opts)
			if err == nil && f.kept.Load() < maxRendered {
				if _, loaded := f.rendered.LoadOrStore(key, q); !loaded {
					f.kept.Add(1)
				}
				q = q.clone()
			}
			return q, err
		}
	}
	return f.render(dialect, flavor, opts)
}

// canonicalMappings writes mappings as a text that tells apart any two
// that render differently: keys sorted, each string length-prefixed, maps
// and strings only (it reports false for another type, which is then
// rendered every time, its error included). The empty map writes "{}",
// never "".
func canonicalMappings(b *strings.Builder, m map[string]any, depth int) bool {
	if depth > 4 {
		return false
	}
	b.WriteByte('{')
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(strconv.Itoa(len(k)))
		b.WriteByte(':')
		b.WriteString(k)
		switch v := m[k].(type) {
		case string:
			b.WriteByte('=')
			b.WriteString(strconv.Itoa(len(v)))
			b.WriteByte(':')
			b.WriteString(v)
		case map[string]any:
			if !canonicalMappings(b, v, depth+1) {
				return false
			}
		case nil:
			b.WriteByte('~')
		default:
			return false
		}
	}
	b.WriteByte('}')
	return true
}

// clone copies Args, which the caller owns.
func (q SQL) clone() SQL {
	if q.Args != nil {
		q.Args = append([]any(nil), q.Args...)
	}
	return q
}

func (f *Filter) render(dialect Dialect, flavor sqlbuilder.Flavor, opts SQLOptions) (SQL, error) {
	mappings, err := lookupMappings(opts.Mappings, "sql", string(dialect))
	if err != nil {
		return SQL{}, err
	}
	r := sqlRenderer{dialect: dialect, flavor: flavor, param: opts.Parameterized, mappings: mappings}
	if dialect == PostgreSQL {
		r.nonText = nonTextFields(f.cond)
	}
	cond := sqlbuilder.NewCond()
	cond.Args.Flavor = flavor
	expr, err := r.node(cond, f.cond)
	if err != nil {
		var fe *Error
		if e, ok := err.(*Error); ok {
			fe = e
		} else {
			fe = &Error{Reason: err.Error()}
		}
		fe.Rule, fe.Target = f.rule, "sql+"+string(dialect)
		return SQL{}, fe
	}
	where := sqlbuilder.NewWhereClause()
	where.AddWhereExpr(cond.Args, expr)
	initial := make([]any, max(opts.ArgOffset, 0))
	text, args := where.BuildWithFlavor(flavor, initial...)
	args = args[len(initial):]
	if opts.Parameterized {
		return SQL{Where: text, Args: args}, nil
	}
	text, err = flavor.Interpolate(text, args)
	if err != nil {
		return SQL{}, fmt.Errorf("filter: render %s: %w", dialect, err)
	}
	return SQL{Where: text}, nil
}

type sqlRenderer struct {
	dialect  Dialect
	flavor   sqlbuilder.Flavor
	param    bool
	mappings map[string]any
	// nonText holds the fields the condition compares with a number or a
	// boolean (or reads as a boolean): not text columns.
	nonText map[field]bool
}

// nonTextFields returns the fields n compares with a number or a boolean,
// or reads as a boolean.
func nonTextFields(n *node) map[field]bool {
	out := map[field]bool{}
	var walk func(*node)
	walk = func(n *node) {
		for _, k := range n.kids {
			walk(k)
		}
		if n.kind != kLeaf || n.other != nil {
			return
		}
		vals := n.values
		if n.value != nil {
			vals = append(vals[:len(vals):len(vals)], n.value)
		}
		if n.op == opTrue {
			out[n.field] = true
		}
		for _, v := range vals {
			switch v.(type) {
			case ast.Number, ast.Boolean:
				out[n.field] = true
			}
		}
	}
	walk(n)
	return out
}

// typed reports whether values are rendered with their own type: always
// with placeholders, and on SQLite also inlined, where OPA's text (numbers
// as quoted strings, no type guard) selects other rows than Rego when a
// column holds another type than the value ('3' = 3 on a TEXT column).
//
// On PostgreSQL too: OPA's E'3' is a literal of unknown type, which
// PostgreSQL reads as the column's type (E'3' equals the text '3', E'2.5'
// is refused against a bigint). A typed number (3, 2.5) compares exactly
// with every numeric column and is refused against a text column.
func (r *sqlRenderer) typed() bool {
	return r.param || r.dialect == SQLite || r.dialect == PostgreSQL
}

func (r *sqlRenderer) column(f field) string {
	table, column := mapField(f, r.mappings)
	return quoteField(r.flavor, table, column)
}

// arg is the value of v as the renderer passes it: typed for database/sql
// when parameterized, and as OPA's Compile API passes it when inlined (a
// number is then a quoted string, as OPA writes it).
func (r *sqlRenderer) arg(v ast.Value) (any, error) {
	switch v := v.(type) {
	case ast.String:
		if r.dialect == MySQL && !r.param {
			return sqlbuilder.Raw(mysqlLiteral(string(v))), nil
		}
		if r.dialect == PostgreSQL && pgConvertible(string(v)) {
			// PostgreSQL reads an untyped '3' or 'true' as a number or a
			// boolean against such a column (and pgx encodes a string
			// argument to the column's type): typed as text, it is
			// refused there, as Rego never finds it equal.
			return sqlbuilder.Build("CAST($? AS text)", string(v)), nil
		}
		return string(v), nil
	case ast.Boolean:
		if r.dialect == SQLServer && !r.param {
			if v {
				return int64(1), nil
			}
			return int64(0), nil
		}
		return bool(v), nil
	case ast.Number:
		var a any = json.Number(v)
		if r.typed() {
			var err error
			if a, err = numberArg(v); err != nil {
				return nil, err
			}
		}
		if r.param && r.dialect == PostgreSQL && !isIntegral(v) {
			// PostgreSQL types a parameter as the column it is compared
			// with: 2.5 against a bigint column is then rounded by the
			// driver (pgx) or fails to parse. As numeric it compares
			// exactly with every numeric column. Inlined, 2.5 is a numeric
			// literal.
			return sqlbuilder.Build("CAST($? AS numeric)", a), nil
		}
		return a, nil
	}
	return nil, fmt.Errorf("value %v cannot be a SQL argument", v)
}

// pgConvertible reports whether PostgreSQL may read the string s as a
// number or a boolean (t, yes, on, 1, ...) when it is compared with such a
// column: conservatively, any number-like string and any prefix of a
// boolean word.
func pgConvertible(s string) bool {
	if numberLike(s) {
		return true
	}
	w := strings.ToLower(strings.TrimSpace(s))
	if w == "" {
		return false
	}
	for _, b := range []string{"true", "false", "yes", "no", "on", "off"} {
		if strings.HasPrefix(b, w) {
			return true
		}
	}
	return false
}

// isIntegral reports whether n is a whole number.
func isIntegral(n ast.Number) bool {
	a, err := numberArg(n)
	if err != nil {
		return false
	}
	_, ok := a.(int64)
	return ok
}

// numberArg is a JSON number as an int64 when it is an integer that fits,
// else a float64 when it is finite; others cannot be compared exactly.
func numberArg(n ast.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %v cannot be compared exactly in SQL", n)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f), nil
	}
	return f, nil
}

func (r *sqlRenderer) node(c *sqlbuilder.Cond, n *node) (string, error) {
	switch n.kind {
	case kAnd, kOr:
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			s, err := r.node(c, k)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		if n.kind == kAnd {
			return c.And(parts...), nil
		}
		return c.Or(parts...), nil
	case kNot:
		leaf := n.kids[0]
		s, err := r.leaf(c, leaf)
		if err != nil {
			return "", err
		}
		switch {
		case r.dialect == SQLite && r.sqliteGuarded(leaf):
			// SQLite's guarded comparisons are false, not NULL, for a
			// NULL field: say that the field must be there.
			parts := []string{}
			for _, f := range leaf.fields() {
				parts = append(parts, c.IsNotNull(r.column(f)))
			}
			return c.And(append(parts, "NOT ("+s+")")...), nil
		case r.param:
			return "NOT (" + s + ")", nil
		}
		return c.Not(s), nil
	case kNull:
		return c.IsNull(r.column(n.field)), nil
	case kNotNull:
		return c.IsNotNull(r.column(n.field)), nil
	case kLeaf:
		return r.leaf(c, n)
	case kTrue:
		return "1 = 1", nil
	case kFalse:
		return "1 = 0", nil
	}
	return "", fmt.Errorf("unknown condition")
}

func (r *sqlRenderer) leaf(c *sqlbuilder.Cond, n *node) (string, error) {
	col := r.column(n.field)
	if r.dialect == SQLite {
		return r.sqliteLeaf(c, n, col)
	}
	switch n.op {
	case opTrue:
		v, err := r.arg(ast.Boolean(true))
		if err != nil {
			return "", err
		}
		return c.Equal(col, v), nil
	case opIn:
		args := make([]any, len(n.values))
		for i, v := range n.values {
			a, err := r.arg(v)
			if err != nil {
				return "", err
			}
			args[i] = a
		}
		return c.In(col, args...), nil
	case opStartsWith, opEndsWith, opContains:
		return r.stringOp(c, n.op, col, string(n.value.(ast.String)))
	}
	var v any
	if n.other != nil {
		v = sqlbuilder.Raw(r.column(*n.other))
	} else {
		a, err := r.arg(n.value)
		if err != nil {
			return "", err
		}
		v = a
	}
	_, isString := n.value.(ast.String)
	twoText := n.other != nil && !r.nonText[n.field] && !r.nonText[*n.other]
	if r.param && r.dialect == PostgreSQL && n.op >= opLt && n.op <= opGte && (isString || twoText) {
		// Order strings byte by byte, as OPA does, whatever the
		// database's collation. Two columns are ordered so unless the
		// filter compares one of them with a number or a boolean
		// elsewhere: PostgreSQL refuses a collation on a numeric column
		// (so an unknown numeric pair fails closed, never wider).
		return c.Var(sqlbuilder.Build("$? "+opSymbols[n.op]+" $? COLLATE \"C\"", sqlbuilder.Raw(col), v)), nil
	}
	return r.plainCompare(c, n.op, col, v)
}

// Type guards for SQLite, which converts a value to the column's affinity
// before comparing (a TEXT column's '3' equals 3, an INTEGER column's 3
// equals '3'), where Rego compares types first.
const (
	sqliteText   = "typeof($?) = 'text'"
	sqliteNumber = "typeof($?) IN ('integer', 'real')"
	// SQLite stores a boolean as the integer 0 or 1: the guard keeps a
	// TEXT column's '1' from equalling true. (An INTEGER column's 1 still
	// does: SQLite cannot tell 1 from true.)
	sqliteBool = "typeof($?) = 'integer'"
)

// sqliteLeaf renders a leaf for SQLite with placeholders, comparing as
// Rego does when a column holds another type than the value: equality and
// in with a type guard (an index still serves them), orderings and != on
// +column, which has no affinity, so that SQLite orders numbers before
// text, as Rego does. The leaf is false (not NULL) for a NULL field only
// where a guard decides; kNot adds the IS NOT NULL it then needs.
func (r *sqlRenderer) sqliteLeaf(c *sqlbuilder.Cond, n *node, col string) (string, error) {
	raw := sqlbuilder.Raw(col)
	guard := r.sqliteGuard
	switch n.op {
	case opTrue:
		return c.And(c.Equal(col, true), c.Var(sqlbuilder.Build(sqliteBool, raw))), nil
	case opIn:
		groups := map[string][]any{}
		var order []string
		for _, v := range n.values {
			a, err := r.arg(v)
			if err != nil {
				return "", err
			}
			g := guard(v)
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], a)
		}
		parts := make([]string, 0, len(order))
		for _, g := range order {
			in := c.In(col, groups[g]...)
			if g != "" {
				in = c.And(in, c.Var(sqlbuilder.Build(g, raw)))
			}
			parts = append(parts, in)
		}
		if len(parts) == 1 {
			return parts[0], nil
		}
		return c.Or(parts...), nil
	case opStartsWith, opEndsWith, opContains:
		s, err := r.stringOp(c, n.op, col, string(n.value.(ast.String)))
		if err != nil || !r.affixGuarded(n) {
			return s, err
		}
		return c.And(s, c.Var(sqlbuilder.Build(sqliteText, raw))), nil
	}
	if n.other != nil {
		return c.Var(sqlbuilder.Build("+$? "+opSymbols[n.op]+" +$?", raw, sqlbuilder.Raw(r.column(*n.other)))), nil
	}
	a, err := r.arg(n.value)
	if err != nil {
		return "", err
	}
	if n.op == opEq {
		if g := guard(n.value); g != "" {
			return c.And(c.Equal(col, a), c.Var(sqlbuilder.Build(g, raw))), nil
		}
		return c.Equal(col, a), nil
	}
	if !r.param && guard(n.value) == "" {
		// OPA's text, right for a string no column converts.
		return r.plainCompare(c, n.op, col, a)
	}
	return c.Var(sqlbuilder.Build("+$? "+opSymbols[n.op]+" $?", raw, a)), nil
}

func (r *sqlRenderer) plainCompare(c *sqlbuilder.Cond, o op, col string, v any) (string, error) {
	switch o {
	case opEq:
		return c.Equal(col, v), nil
	case opNe:
		return c.NotEqual(col, v), nil
	case opLt:
		return c.LessThan(col, v), nil
	case opLte:
		return c.LessEqualThan(col, v), nil
	case opGt:
		return c.GreaterThan(col, v), nil
	case opGte:
		return c.GreaterEqualThan(col, v), nil
	}
	return "", fmt.Errorf("unknown comparison")
}

// sqliteGuard is the type guard SQLite needs to compare a column with v as
// Rego does, "" for none. Parameterized, every string and number has one.
// Inlined, a string that SQLite never converts to a number (it does so
// for the text of a number, against a column of numeric affinity) needs
// none, so that the text stays OPA's: 'sales' equals no number and orders
// after every number in both SQLite and Rego.
func (r *sqlRenderer) sqliteGuard(v ast.Value) string {
	switch v := v.(type) {
	case ast.String:
		if !r.param && !numberLike(string(v)) {
			return ""
		}
		return sqliteText
	case ast.Number:
		return sqliteNumber
	case ast.Boolean:
		// SQLite's TRUE is 1: a text column's '1' equals it unless the
		// field must be an integer.
		return sqliteBool
	}
	return ""
}

// numberLike reports whether SQLite may read s as a number: conservatively,
// any string of digits, signs, points, exponents and spaces holding a
// digit, or one Go parses as a float (inf, nan, hexadecimal).
func numberLike(s string) bool {
	if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		return true
	}
	digit := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case strings.ContainsRune("+-.eE \t\n\r\f\v", c):
		default:
			return false
		}
	}
	return digit
}

// affixGuarded reports whether startswith, endswith or contains needs the
// text guard on SQLite, whose instr and substr read a number as its text:
// always with placeholders; inlined, unless the string holds a character
// no number's text holds (so that the text stays OPA's).
func (r *sqlRenderer) affixGuarded(n *node) bool {
	if r.param {
		return true
	}
	s := string(n.value.(ast.String))
	return s == "" || strings.Trim(s, "0123456789+-.eEInf") == ""
}

// sqliteGuarded reports whether sqliteLeaf guards n with typeof, which is
// false rather than NULL for a NULL field.
func (r *sqlRenderer) sqliteGuarded(n *node) bool {
	switch n.op {
	case opTrue:
		return true
	case opStartsWith, opEndsWith, opContains:
		return r.affixGuarded(n)
	case opIn:
		for _, v := range n.values {
			if r.sqliteGuard(v) != "" {
				return true
			}
		}
	case opEq:
		if n.other != nil {
			return false
		}
		return r.sqliteGuard(n.value) != ""
	}
	return false
}

// stringOp renders startswith, endswith and contains: LIKE where LIKE is
// case-sensitive and escapable (PostgreSQL, MySQL with a binary collation,
// SQL Server with ESCAPE), and instr/substr on SQLite, whose LIKE ignores
// case.
func (r *sqlRenderer) stringOp(c *sqlbuilder.Cond, o op, col, s string) (string, error) {
	if r.dialect == SQLite {
		n := utf8.RuneCountInString(s)
		switch {
		case n == 0:
			// Every string starts with, ends with and contains "".
			return c.Var(sqlbuilder.Build("length($?) >= 0", sqlbuilder.Raw(col))), nil
		case o == opStartsWith:
			return c.Var(sqlbuilder.Build("instr($?, $?) = 1", sqlbuilder.Raw(col), s)), nil
		case o == opContains:
			return c.Var(sqlbuilder.Build("instr($?, $?) > 0", sqlbuilder.Raw(col), s)), nil
		default:
			return c.Var(sqlbuilder.Build("substr($?, $?) = $?", sqlbuilder.Raw(col), int64(-n), s)), nil
		}
	}
	p := likeEscape(s)
	switch o {
	case opStartsWith:
		p += "%"
	case opEndsWith:
		p = "%" + p
	default:
		p = "%" + p + "%"
	}
	if r.dialect == SQLServer && strings.ContainsAny(s, `\%_[`) {
		// SQL Server's LIKE has no escape character unless told, and
		// reads [ as the start of a character class. The escape is ! so
		// that no backslash needs quoting.
		p = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_", "[", "![").Replace(s)
		switch o {
		case opStartsWith:
			p += "%"
		case opEndsWith:
			p = "%" + p
		default:
			p = "%" + p + "%"
		}
		return c.Var(sqlbuilder.Build("$? LIKE $? ESCAPE '!'", sqlbuilder.Raw(col), p)), nil
	}
	if r.dialect == MySQL && !r.param {
		return c.Like(col, sqlbuilder.Raw(mysqlLiteral(p))), nil
	}
	return c.Like(col, p), nil
}

// mysqlLiteral quotes s for MySQL whatever the server's sql_mode: a quote
// is doubled (two quotes end no literal, with or without
// NO_BACKSLASH_ESCAPES), where sqlbuilder writes a backslash and a quote,
// which such a server reads as a backslash and the literal's end, running
// the rest of the value as SQL. A backslash is doubled and NUL is \0: one
// character each by default, two under NO_BACKSLASH_ESCAPES, where a value
// holding a backslash then means something else (a LIKE pattern may match
// more): with such a server, render Parameterized.
func mysqlLiteral(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", "''", "\x00", `\0`).Replace(s) + "'"
}

// likeEscape escapes LIKE's metacharacters with a backslash, as OPA does.
func likeEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "_", `\_`)
	return strings.ReplaceAll(s, "%", `\%`)
}

// quoteField quotes the parts of table.column that are not plain
// identifiers, as OPA does.
func quoteField(flavor sqlbuilder.Flavor, table, column string) string {
	// A mapped table may name its schema (public.documents); a column is
	// one identifier, dots included.
	parts := append(strings.Split(table, "."), column)
	for i, p := range parts {
		if !bareIdent(p) {
			parts[i] = flavor.Quote(p)
		}
	}
	return strings.Join(parts, ".")
}

func bareIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}
