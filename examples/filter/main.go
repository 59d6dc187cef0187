// Command filter is a list endpoint whose rows are chosen by the policy: GET
// /docs returns the documents the caller may see, a page at a time, from a
// SQLite database through database/sql. The policy's rule
// data.filters.include is compiled, for the caller, into the query's WHERE
// clause with placeholders and arguments (package filter): the database
// does the filtering, and no row is read that the caller may not see.
//
//	go run ./examples/filter
//	curl -H 'X-API-Key: alice-key-0123456789' 'localhost:8000/docs?limit=2'
//	curl -H 'X-API-Key: alice-key-0123456789' 'localhost:8000/docs?limit=2&after=4'
package main

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // a pure-Go SQLite driver: the example's database

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

func main() {
	addr := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	db, err := openDB(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s", ln.Addr())
	if err := run(ctx, ln, db); err != nil {
		log.Fatal(err)
	}
}

// run serves the list endpoint on ln until ctx is done.
func run(ctx context.Context, ln net.Listener, db *sql.DB) error {
	handler, err := newHandler(ctx, db)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// The policy names the table and its columns after the unknown input.docs;
// the database calls them documents and owner_id (OPA's
// targetSQLTableMappings form).
var mappings = map[string]any{"docs": map[string]any{"$self": "documents", "owner": "owner_id"}}

// newHandler is GET /docs behind the middleware.
func newHandler(ctx context.Context, db *sql.DB) (http.Handler, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	// One compiler per list rule: it prepares the rule once per policy
	// revision and caches the filter per caller.
	docsFilter, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		return nil, err
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "alice-key-0123456789", Subject: "alice", Claims: map[string]any{"depts": []any{"hr"}, "clearance": 2}},
		{Key: "bob-key-0123456789", Subject: "bob", Claims: map[string]any{"depts": []any{"it", "ops"}, "clearance": 5}},
		{Key: "audit-key-0123456789", Subject: "ada", Claims: map[string]any{"roles": []any{"auditor"}}},
		{Key: "guest-key-0123456789", Subject: "guest"},
	}})
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /docs", listDocs(db, guard, docsFilter))
	return guard.Handler(mux), nil
}

// doc is one row of the answer.
type doc struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
}

// page is the answer: a page of documents and the cursor of the next one.
type page struct {
	Docs []doc `json:"docs"`
	// Next is the after= of the next page; absent on the last page.
	Next string `json:"next,omitempty"`
}

const maxLimit = 100

// listDocs answers GET /docs?limit=N&after=ID with keyset pagination: the
// documents the caller may see, by id, after the cursor.
func listDocs(db *sql.DB, guard *authz.Middleware, docsFilter *filter.Compiler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, after, err := pageParams(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// The caller's filter, compiled with the identity and the policy
		// revision that authorized this request.
		f, err := guard.Filter(r, docsFilter)
		switch {
		case errors.Is(err, filter.ErrRevisionChanged):
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the policy changed; retry", http.StatusServiceUnavailable)
			return
		case err != nil:
			slog.ErrorContext(r.Context(), "list filter", "error", err)
			http.Error(w, "cannot list documents", http.StatusInternalServerError)
			return
		}
		out := page{Docs: []doc{}}
		if f.Never() { // nothing to read
			writeJSON(w, out)
			return
		}
		q, err := f.SQL(filter.SQLite, filter.SQLOptions{Parameterized: true, Mappings: mappings})
		if err != nil {
			slog.ErrorContext(r.Context(), "list filter", "error", err)
			http.Error(w, "cannot list documents", http.StatusInternalServerError)
			return
		}
		// The filter's condition first, so that its ? placeholders come
		// first; then the cursor and one row more than the page, to know
		// whether there is a next page.
		cond := strings.TrimPrefix(q.Where, "WHERE ")
		if cond == "" {
			cond = "1 = 1" // always: every row
		}
		stmt := "SELECT id, title FROM documents WHERE (" + cond + ") AND id > ? ORDER BY id LIMIT ?"
		args := append(append([]any{}, q.Args...), after, limit+1)
		rows, err := db.QueryContext(r.Context(), stmt, args...)
		if err != nil {
			slog.ErrorContext(r.Context(), "list query", "error", err)
			http.Error(w, "cannot list documents", http.StatusInternalServerError)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var d doc
			if err := rows.Scan(&d.ID, &d.Title); err != nil {
				http.Error(w, "cannot list documents", http.StatusInternalServerError)
				return
			}
			out.Docs = append(out.Docs, d)
		}
		if err := rows.Err(); err != nil {
			http.Error(w, "cannot list documents", http.StatusInternalServerError)
			return
		}
		if len(out.Docs) > limit {
			out.Docs = out.Docs[:limit]
			out.Next = strconv.FormatInt(out.Docs[limit-1].ID, 10)
		}
		writeJSON(w, out)
	})
}

// pageParams reads limit (default 10, at most maxLimit) and after (the last
// id of the previous page, default 0).
func pageParams(r *http.Request) (limit int, after int64, err error) {
	limit = 10
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, fmt.Errorf("limit: a number from 1 to %d", maxLimit)
		}
	}
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			return 0, 0, errors.New("after: the id of the last document of the previous page")
		}
	}
	return limit, after, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// seed is the example's documents: id, title, owner, department, level,
// public, archived (nil: NULL, a field the row does not have).
var seed = []struct {
	id               int64
	title, owner     string
	dept             any
	level            any
	public, archived any
}{
	{1, "Holiday rota", "carol", "hr", 1, false, false},
	{2, "Salaries 2026", "carol", "hr", 3, false, false},
	{3, "Company handbook", "dave", nil, nil, true, false},
	{4, "Old handbook", "dave", nil, nil, true, true},
	{5, "Alice's notes", "alice", "hr", 4, false, true},
	{6, "Network map", "erin", "it", 4, false, false},
	{7, "Incident 42", "erin", "ops", 5, nil, nil},
	{8, "Root passwords", "erin", "it", 9, false, false},
	{9, "Lunch menu", "frank", nil, nil, true, nil},
	{10, "Onboarding", "carol", "hr", 2, nil, nil},
}

// openDB creates the example's database: an in-memory SQLite with one
// documents table, booleans as 0/1 and NULL where a row has no value.
func openDB(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	// Every connection to a private :memory: database is a new database:
	// keep one.
	db.SetMaxOpenConns(1)
	const schema = `CREATE TABLE documents (
		id INTEGER PRIMARY KEY, title TEXT NOT NULL, owner_id TEXT NOT NULL,
		dept TEXT, level INTEGER, public INTEGER, archived INTEGER)`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, err
	}
	for _, d := range seed {
		if _, err := db.ExecContext(ctx, "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
			d.id, d.title, d.owner, d.dept, d.level, d.public, d.archived); err != nil {
			db.Close()
			return nil, err
		}
	}
	return db, nil
}
