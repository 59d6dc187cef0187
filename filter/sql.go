package filter

// Dialect is a SQL dialect.
type Dialect string

// The SQL dialects, named as in OPA's media types.
const (
	PostgreSQL Dialect = "postgresql"
	MySQL      Dialect = "mysql"
	SQLite     Dialect = "sqlite"
	SQLServer  Dialect = "sqlserver"
)

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
	// "owner": "owner_id"}}, optionally keyed first by target ("sql") or by
	// dialect ("postgresql").
	Mappings map[string]any
}

// SQL is a rendered condition.
type SQL struct {
	// Where is "WHERE <condition>", "" for a filter that selects every
	// row, and a condition that is never true (WHERE 1 = 0) for one that
	// selects none.
	Where string
	// Args are the values of the placeholders, in order: string, int64,
	// float64 or bool. Nil when inlined.
	Args []any
}

// SQL renders the filter for dialect. A condition the dialect cannot
// express is an *Error.
func (f *Filter) SQL(dialect Dialect, opts SQLOptions) (SQL, error) {
	return SQL{}, errTODO
}
