package filterdiff

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"
)

// DB is a database holding the rows of a corpus in the table documents.
type DB struct {
	SQL     *sql.DB
	Dialect string // sqlite, postgresql
}

// OpenSQLite opens a private in-memory SQLite database (modernc.org/sqlite).
func OpenSQLite() (*DB, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("filterdiff: open sqlite: %w", err)
	}
	// Each connection of :memory: is a database of its own: keep one.
	db.SetMaxOpenConns(1)
	return &DB{SQL: db, Dialect: "sqlite"}, nil
}

// Load creates the table and inserts the rows of cases.
func (d *DB) Load(ctx context.Context, cases []*Case) error {
	for stmt := range strings.SplitSeq(Schema, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := d.SQL.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("filterdiff: %s: schema: %w", d.Dialect, err)
		}
	}
	return d.Insert(ctx, cases)
}

// Insert inserts the rows of cases into the table Load created.
func (d *DB) Insert(ctx context.Context, cases []*Case) error {
	cols := []string{"id", "case_id"}
	for _, f := range Fields {
		cols = append(cols, f.Column)
	}
	type rec struct {
		c   *Case
		row Row
	}
	var all []rec
	for _, c := range cases {
		for _, r := range c.Rows {
			all = append(all, rec{c, r})
		}
	}
	tx, err := d.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("filterdiff: %s: %w", d.Dialect, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	const batch = 200
	for start := 0; start < len(all); start += batch {
		end := min(start+batch, len(all))
		var b strings.Builder
		fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", Table, strings.Join(cols, ", "))
		var args []any
		for i, r := range all[start:end] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(")
			vals := []any{r.row.ID, r.c.ID}
			for _, f := range Fields {
				v, ok := r.row.Doc[f.Name]
				if !ok {
					vals = append(vals, nil)
					continue
				}
				vals = append(vals, columnValue(f, v))
			}
			for j, v := range vals {
				if j > 0 {
					b.WriteString(", ")
				}
				args = append(args, v)
				b.WriteString(d.placeholder(len(args)))
			}
			b.WriteString(")")
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("filterdiff: %s: insert: %w", d.Dialect, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("filterdiff: %s: commit: %w", d.Dialect, err)
	}
	return nil
}

func columnValue(f Field, v any) any {
	if n, ok := v.(json.Number); ok {
		if f.Name == "level" {
			i, err := n.Int64()
			if err == nil {
				return i
			}
		}
		x, _ := n.Float64()
		return x
	}
	return v
}

func (d *DB) placeholder(n int) string {
	if d.Dialect == "postgresql" {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// Select returns the ids of the case's rows that the filter selects, in
// id order. where is the filter's condition, with or without its leading
// WHERE; "" selects every row of the case.
func (d *DB) Select(ctx context.Context, caseID int, where string, args []any) ([]int, error) {
	cond := strings.TrimSpace(where)
	if rest, ok := strings.CutPrefix(cond, "WHERE "); ok {
		cond = rest
	}
	q := "SELECT id FROM " + Table + " WHERE case_id = " + strconv.Itoa(caseID)
	if cond != "" {
		q += " AND (" + cond + ")"
	}
	q += " ORDER BY id"
	rows, err := d.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (query %s, args %v)", d.Dialect, err, q, args)
	}
	defer rows.Close()
	ids := []int{}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", d.Dialect, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w (query %s, args %v)", d.Dialect, err, q, args)
	}
	return ids, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.SQL.Close() }
