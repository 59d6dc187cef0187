package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/regoguard/regoguard/filter"
	_ "modernc.org/sqlite" // the in-memory database of check's filter cases; only this command links a driver
)

// sqliteTable loads candidate rows into a table of a private in-memory
// SQLite database, as a service's schema would hold them: a column per
// field (renamed by the mappings), typed by the values it holds (INTEGER,
// REAL, TEXT; booleans as 0 and 1, as SQLite stores them), an absent field
// a NULL.
type sqliteTable struct {
	name        string
	key         string
	columnNames map[string]string // field → column
}

// sqliteDB is one loaded table.
type sqliteDB struct {
	db    *sql.DB
	table string
	key   string // the key's column
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (t sqliteTable) column(field string) string {
	if c, ok := t.columnNames[field]; ok {
		return c
	}
	return field
}

// sqliteValue is the value a column holds for a JSON value, and its type.
func sqliteValue(v any) (any, string, error) {
	switch x := v.(type) {
	case nil:
		return nil, "", nil
	case bool:
		if x {
			return int64(1), "INTEGER", nil
		}
		return int64(0), "INTEGER", nil
	case string:
		return x, "TEXT", nil
	case int64:
		return x, "INTEGER", nil
	case int:
		return int64(x), "INTEGER", nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), "INTEGER", nil
		}
		return x, "REAL", nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, "INTEGER", nil
		}
		f, err := x.Float64()
		return f, "REAL", err
	}
	return nil, "", fmt.Errorf("%T cannot be a column", v)
}

func (t sqliteTable) open(ctx context.Context, rows []map[string]any) (*sqliteDB, error) {
	types := map[string]string{}
	var fields []string
	for _, row := range rows {
		for f, v := range row {
			_, typ, err := sqliteValue(v)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f, err)
			}
			prev, seen := types[f]
			if !seen {
				fields = append(fields, f)
				types[f] = typ
				continue
			}
			switch {
			case prev == typ || typ == "":
			case prev == "":
				types[f] = typ
			case (prev == "INTEGER" && typ == "REAL") || (prev == "REAL" && typ == "INTEGER"):
				types[f] = "REAL"
			default:
				types[f] = "ANY" // mixed: no affinity, values kept as given
			}
		}
	}
	sort.Strings(fields)
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	// One connection: every connection to :memory: is its own database.
	db.SetMaxOpenConns(1)
	cols := make([]string, len(fields))
	for i, f := range fields {
		typ := types[f]
		if typ == "ANY" || typ == "" {
			typ = "" // no declared type: BLOB affinity, compared as stored
		}
		cols[i] = strings.TrimSpace(quoteIdent(t.column(f)) + " " + typ)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", quoteIdent(t.name), strings.Join(cols, ", "))); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: creating table %s: %w", t.name, err)
	}
	for i, row := range rows {
		names := make([]string, len(fields))
		marks := make([]string, len(fields))
		args := make([]any, len(fields))
		for j, f := range fields {
			names[j], marks[j] = quoteIdent(t.column(f)), "?"
			args[j], _, _ = sqliteValue(row[f])
		}
		q := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", quoteIdent(t.name), strings.Join(names, ", "), strings.Join(marks, ", "))
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: row %d: %w", i+1, err)
		}
	}
	return &sqliteDB{db: db, table: t.name, key: t.column(t.key)}, nil
}

func (d *sqliteDB) Close() error { return d.db.Close() }

// selectKeys runs a filter over the table and returns the keys of the rows
// it selects, as JSON texts, sorted.
func (d *sqliteDB) selectKeys(ctx context.Context, res filter.SQL) ([]string, error) {
	where := res.Where
	q := fmt.Sprintf("SELECT %s FROM %s %s", quoteIdent(d.key), quoteIdent(d.table), where)
	rows, err := d.db.QueryContext(ctx, q, res.Args...)
	// A field that no candidate row has is a column of NULLs: add it and
	// ask again (at most once per column the filter names).
	for tries := 0; err != nil && tries < 64; tries++ {
		col, ok := missingColumn(err)
		if !ok {
			break
		}
		if _, aerr := d.db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", quoteIdent(d.table), quoteIdent(col))); aerr != nil {
			break
		}
		rows, err = d.db.QueryContext(ctx, q, res.Args...)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite rejected the filter %q (args %v): %w", where, res.Args, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k any
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		if b, ok := k.([]byte); ok {
			k = string(b)
		}
		keys = append(keys, keyString(k))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	sort.Strings(keys)
	return keys, nil
}

// missingColumn reads SQLite's "no such column: t.c" error.
func missingColumn(err error) (string, bool) {
	_, rest, ok := strings.Cut(err.Error(), "no such column: ")
	if !ok {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, " ")
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest, rest != ""
}
