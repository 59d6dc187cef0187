// Package filter compiles a policy rule into a data filter for list
// endpoints: which of these rows may this caller see?
//
// A rule such as data.filters.include is partially evaluated with the known
// input (the caller) and with one part of the input left unknown (the row,
// for example input.docs). What remains is translated into a condition on
// the row's columns, rendered as a SQL WHERE clause for PostgreSQL, MySQL,
// SQLite or SQL Server (with placeholders and arguments for database/sql, or
// with the values inlined exactly as OPA's Compile API writes them), or as
// UCAST for JavaScript and ORM consumers. No database driver is linked: SQL
// is text plus arguments.
//
//	c, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
//	...
//	f, err := c.Compile(ctx, input)           // per request; cached per revision and input
//	q, err := f.SQL(filter.PostgreSQL, filter.SQLOptions{Parameterized: true})
//	rows, err := db.QueryContext(ctx, "SELECT id, title FROM docs "+q.Where, q.Args...)
//
// Behind an authz.Middleware, a list handler gets the caller's filter with
// authz.Middleware.Filter: the same identity, input and policy revision as
// the decision that let the request in, logged as a decision.
//
// # What a filter means
//
// A filter selects exactly the rows for which full evaluation of the rule,
// with the unknown set to the row's object, is true under OPA's semantics.
// A row's object has one field per column whose value is not NULL: a SQL
// NULL is a field absent from the object, never JSON null (so
// input.docs.x == null is never true and != null means present). Each
// column holds one type, the type of the values the policy compares it with:
// a number is compared with a numeric column, a string with a text column,
// and a bare reference (input.docs.public) or a comparison with true or
// false reads a boolean column (PostgreSQL boolean, MySQL and SQLite 0/1,
// SQL Server bit). A policy comparing a text column with a number (or the
// reverse) asks for Rego's cross-type semantics, which SQL does not have:
// keep the types apart.
//
// Negation follows OPA, tested against its evaluation rather than reasoned
// from SQL: with the field absent, `not input.docs.x == "a"`,
// `not input.docs.public` and `not helper` (when helper's bodies are not
// true) select the row, while `not input.docs.x in {...}`,
// `not input.docs.x != "a"`, `not input.docs.x < 3` and
// `not startswith(input.docs.x, "a")` do not (OPA evaluates a call's
// operands before the not), nor does a negation of a field passed to a
// function or bound to a variable (f(v) if v == 1 with
// `not f(input.docs.x)`; `x := input.docs.x; not x == 1`), which OPA's
// partial evaluation writes as `not input.docs.x = 1` but OPA's evaluation
// never reaches when the field is absent. A field read through a variable
// bound to the whole row (d := input.docs; not d.archived, also in a
// negated helper) is read under the not, as is every field beside it in
// that expression: with it absent, the row is selected. Helper rules whose
// default is false are translated; other defaults depending on the row are
// refused.
//
// # Dialects
//
// Parameterized SQL passes typed arguments (string, int64, float64, bool)
// and is exact on PostgreSQL and SQLite: strings are ordered byte by byte on
// PostgreSQL (COLLATE "C"), as in Rego; startswith, endswith and contains
// are LIKE with escaped % and _ on PostgreSQL and MySQL, LIKE with
// ESCAPE '!' (and [ escaped) on SQL Server when the value holds a
// metacharacter, and instr/substr on SQLite, whose LIKE ignores case.
// Parameterized SQLite also compares across types as Rego does, although
// SQLite converts a value to the column's affinity ('3' = 3 on a TEXT
// column): = and in carry a typeof guard (an index still serves them),
// orderings and <> compare +column, which has no affinity (and no index),
// so that numbers order before text as in Rego. On
// MySQL and SQL Server, equality and LIKE follow the column's collation,
// which must be a binary one (utf8mb4_0900_bin, Latin1_General_100_BIN2) for
// the filter to be exact; SQL Server also ignores trailing spaces in =.
//
// The inline form is OPA's Compile API text, byte for byte wherever OPA's
// text is right: numbers are quoted as strings (docs.level < E'3'), which
// needs numeric columns; it departs from OPA only where OPA's text selects
// other rows than OPA's evaluation (the not of an equality, == null) or is
// not valid for the dialect (TRUE and an unescaped LIKE on SQL Server).
// On SQLite, OPA's text is wrong whenever a column holds another type than
// the value (SQLite converts '3' to the column's affinity), so the inline
// form is typed as the parameterized one: numbers unquoted, with the
// typeof guard on = and in, +column orderings and two columns compared as
// +a op +b; it keeps OPA's text only for a string SQLite never reads as a
// number ('sales', not '3') and for startswith, endswith and contains of a
// string holding a character no number's text holds. On PostgreSQL,
// OPA's literals have no type and PostgreSQL reads them as the column's
// (E'3' equals the text '3', E'2.5' is refused against a bigint): numbers
// are numeric literals (3, 2.5; with placeholders, CAST($1 AS numeric) for
// a non-integer), and a string PostgreSQL could read as a number or a
// boolean ('3', 't') is CAST(E'3' AS text) in both forms, so that a
// comparison across types is refused by the database rather than true.
// Two columns are ordered with COLLATE "C" unless the filter compares one
// of them with a number or a boolean (PostgreSQL has no collation for
// those; an unknown numeric pair is then refused, never wider).
// The filter of a rule that selects no row renders as WHERE 0 = 1; one that
// selects every row as "".
//
// # Supported and refused
//
// Supported: ==, !=, <, <=, >, >= between a column and a value or two
// columns; in and not ... in over known sets, arrays and objects;
// startswith, endswith, contains on every dialect; bare boolean columns;
// not over expressions and over helper rules (nested); helper rules and
// functions (inlined by partial evaluation); some ... in over known
// collections; data lookups; several rule bodies (OR).
//
// Refused, with an [*Error] naming the rule, the file:line:col and why:
// a function of a column (lower, count, regex.match, ...), nested fields
// and array columns (input.docs.meta.owner, "x" in input.docs.tags), every,
// with, helper rules with else or a default value depending on the row,
// ordering against a boolean or a collection. What one target cannot
// express (in or startswith in UCAST minimal, two columns in UCAST prisma)
// is refused when rendering for it. A clause is never dropped and a filter
// is never wider than the rule.
//
// # Caching
//
// A [Compiler] prepares the rule once per policy revision and caches the
// compiled filter per revision and per known input, keyed by the part of the
// input the policy reads (policy.Compiled.InputFields: a request ID or a
// header no rule reads does not defeat the cache, a field a rule reads
// always counts), in a bounded LRU. A new revision starts a new cache, so a
// filter of one revision is never answered after another is loaded. A
// cached filter also keeps its rendered SQL (per dialect, form, argument
// offset and mappings, a few dozen at most): answering from it costs about
// a microsecond, a miss (partial evaluation) a fraction of a millisecond.
package filter
