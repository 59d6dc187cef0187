// Package filter compiles a policy rule into a data filter for list
// endpoints: which of these rows may this caller see?
//
// A rule such as data.filters.include is partially evaluated with the known
// input (the caller) and with one part of the input left unknown (the row,
// for example input.docs). What remains is translated into a condition on
// the row's columns, rendered as a SQL WHERE clause for PostgreSQL, MySQL,
// SQLite or SQL Server (with placeholders and arguments for database/sql, or
// with the values inlined exactly as OPA's Compile API writes them), or as
// UCAST for JavaScript and ORM consumers.
//
//	c, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
//	...
//	f, err := c.Compile(ctx, input)           // once per request; plans are cached
//	q, err := f.SQL(filter.PostgreSQL, filter.SQLOptions{Parameterized: true})
//	rows, err := db.QueryContext(ctx, "SELECT id, title FROM docs "+q.Where, q.Args...)
//
// # What a filter means
//
// A filter selects exactly the rows for which full evaluation of the rule,
// with the unknown set to the row's object, is true under OPA's semantics.
// A row's object has one field per column whose value is not NULL: a SQL
// NULL is a field absent from the object, never JSON null. Columns are
// typed: a field compared with a number is a numeric column, with a string a
// text column, and a bare reference (input.docs.public) or a comparison with
// true or false is a boolean column (PostgreSQL boolean, MySQL and SQLite
// 0/1, SQL Server bit). Text comparisons are exact (case-sensitive) on
// PostgreSQL and SQLite; on MySQL and SQL Server they follow the column's
// collation, which must then be a binary one for the filter to be exact.
//
// Negation follows OPA, tested against its evaluation rather than reasoned
// from SQL: with the field absent, `not input.docs.x == "a"` and
// `not input.docs.public` are true (the row is included) while
// `not input.docs.x in {...}`, `not input.docs.x != "a"`, `not input.docs.x
// < 3` and `not startswith(input.docs.x, "a")` are undefined (excluded), and
// `not helper` is true whenever helper's body is not.
//
// # What is refused
//
// Anything a target cannot express is refused with an [*Error] naming the
// rule, its file:line:col and why; a clause is never dropped and a filter is
// never wider than the rule. See [Error].
//
// # Caching
//
// A [Compiler] prepares the rule once per policy revision and caches the
// compiled filter per revision and known input (the part of it the rule
// reads); a filter of one revision is never answered after a new revision
// is loaded. Rendering a cached filter allocates only the text.
package filter
