package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// users are the example's API keys and what each may see, by hand from
// policy/filters.rego and the seed rows.
var users = []struct {
	key, sub string
	claims   map[string]any
	want     []int64
}{
	// Public (3, and 9 whose archived is NULL), her own (5, archived), hr
	// at level 2 or below (1, 10; not 2 at level 3).
	{"alice-key-0123456789", "alice", map[string]any{"depts": []any{"hr"}, "clearance": 2}, []int64{1, 3, 5, 9, 10}},
	// Public, it and ops at 5 or below (6, 7; not 8 at 9).
	{"bob-key-0123456789", "bob", map[string]any{"depts": []any{"it", "ops"}, "clearance": 5}, []int64{3, 6, 7, 9}},
	{"audit-key-0123456789", "ada", map[string]any{"roles": []any{"auditor"}}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	{"guest-key-0123456789", "guest", map[string]any{}, []int64{3, 9}},
}

func start(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := openDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, db) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		db.Close()
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url, key string) (int, page) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p page
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, p
}

// Each caller, paging two at a time, sees exactly the rows the policy
// lets them see: each once, in order, none missing, none extra.
func TestListPagesThroughWhatThePolicyAllows(t *testing.T) {
	base := start(t)
	for _, u := range users {
		var got []int64
		after, pages := "", 0
		for {
			url := base + "/docs?limit=2"
			if after != "" {
				url += "&after=" + after
			}
			status, p := get(t, url, u.key)
			if status != http.StatusOK {
				t.Fatalf("%s: %s: %d", u.sub, url, status)
			}
			if len(p.Docs) > 2 {
				t.Errorf("%s: a page of %d", u.sub, len(p.Docs))
			}
			for _, d := range p.Docs {
				got = append(got, d.ID)
			}
			pages++
			if p.Next == "" {
				break
			}
			if pages > 10 {
				t.Fatalf("%s: no last page", u.sub)
			}
			after = p.Next
		}
		if !slices.Equal(got, u.want) {
			t.Errorf("%s sees %v, want %v", u.sub, got, u.want)
		}
		if want := (len(u.want) + 1) / 2; pages != max(want, 1) {
			t.Errorf("%s: %d pages for %d documents", u.sub, pages, len(u.want))
		}
	}
}

// The rows each caller sees are those for which full evaluation of the
// rule, with the row as input.docs (a NULL column absent), is true.
func TestListAgreesWithFullEvaluation(t *testing.T) {
	src, err := policyFiles.ReadFile("policy/filters.rego")
	if err != nil {
		t.Fatal(err)
	}
	pq, err := rego.New(rego.Query("data.filters.include"), rego.Module("filters.rego", string(src))).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := start(t)
	for _, u := range users {
		var want []int64
		for _, d := range seed {
			row := map[string]any{"id": d.id, "title": d.title, "owner": d.owner}
			for k, v := range map[string]any{"dept": d.dept, "level": d.level, "public": d.public, "archived": d.archived} {
				if v != nil {
					row[k] = v
				}
			}
			input := map[string]any{"user": map[string]any{"sub": u.sub, "claims": u.claims, "authenticated": true}, "docs": row}
			rs, err := pq.Eval(context.Background(), rego.EvalInput(input))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) > 0 {
				want = append(want, d.id)
			}
		}
		_, p := get(t, base+"/docs?limit=100", u.key)
		var got []int64
		for _, d := range p.Docs {
			got = append(got, d.ID)
		}
		if !slices.Equal(got, want) || !slices.Equal(want, u.want) {
			t.Errorf("%s: list %v, full evaluation %v, by hand %v", u.sub, got, want, u.want)
		}
	}
}

func TestListRefusals(t *testing.T) {
	base := start(t)
	for _, c := range []struct {
		url, key string
		status   int
	}{
		{"/docs", "", http.StatusUnauthorized},
		{"/docs", "wrong-key-0123456789", http.StatusUnauthorized},
		{"/docs?limit=0", "alice-key-0123456789", http.StatusBadRequest},
		{"/docs?limit=1000", "alice-key-0123456789", http.StatusBadRequest},
		{"/docs?after=x", "alice-key-0123456789", http.StatusBadRequest},
		{"/docs/1", "alice-key-0123456789", http.StatusForbidden},
	} {
		if status, _ := get(t, base+c.url, c.key); status != c.status {
			t.Errorf("%s with %q: %d, want %d", c.url, c.key, status, c.status)
		}
	}
}
