package filterdiff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Answer is a translator's answer for one case and dialect.
type Answer struct {
	// Refused is the translator's error when it refused the case.
	Refused error
	// Never is true when no row may pass (OPA answers {}).
	Never bool
	// Where is the condition ("" with Never false: every row passes), with
	// or without its leading WHERE.
	Where string
	// Args are the placeholders' values, for a parameterized filter.
	Args []any
}

// CompileRequest is the body of POST /v1/compile/{path} for a case.
func CompileRequest(c *Case, dialect string) ([]byte, error) {
	body := map[string]any{
		"input":    c.Input,
		"unknowns": []string{Unknown},
		"options": map[string]any{
			"targetSQLTableMappings": map[string]any{dialect: Mapping()},
		},
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("filterdiff: %s: request: %w", c.Name, err)
	}
	return b, nil
}

// MediaType is the Accept header of OPA's Compile API for a SQL dialect.
func MediaType(dialect string) string { return "application/vnd.opa.sql." + dialect + "+json" }

// CompileOPA asks OPA's Compile API at baseURL (a running opa run
// --server holding the corpus) for the case's filter.
func CompileOPA(ctx context.Context, client *http.Client, baseURL string, c *Case, dialect string) (Answer, error) {
	body, err := CompileRequest(c, dialect)
	if err != nil {
		return Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/compile/"+c.Path(), bytes.NewReader(body))
	if err != nil {
		return Answer{}, fmt.Errorf("filterdiff: %s: %w", c.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", MediaType(dialect))
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("filterdiff: %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, fmt.Errorf("filterdiff: %s: %w", c.Name, err)
	}
	return ParseCompileResponse(resp.StatusCode, raw)
}

// ParseCompileResponse reads an answer of OPA's Compile API: 200 with
// {"result":{"query":"WHERE …"}}, {"result":{"query":""}} (always) or {}
// (never); any other status is a refusal.
func ParseCompileResponse(status int, raw []byte) (Answer, error) {
	if status != http.StatusOK {
		return Answer{Refused: fmt.Errorf("status %d: %s", status, bytes.TrimSpace(raw))}, nil
	}
	var out struct {
		Result *struct {
			Query *string `json:"query"`
			Args  []any   `json:"args"`
		} `json:"result"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return Answer{}, fmt.Errorf("filterdiff: compile response %q: %w", raw, err)
	}
	if out.Result == nil {
		return Answer{Never: true}, nil
	}
	if out.Result.Query == nil {
		return Answer{}, fmt.Errorf("filterdiff: compile response without a query: %s", raw)
	}
	return Answer{Where: *out.Result.Query, Args: out.Result.Args}, nil
}

// PutPolicy loads the case's module into the OPA server at baseURL under
// the policy id "case", in place of the previous case's: OPA's Compile
// API costs time in proportion to the modules loaded (2.7 s a request with
// 1 200 modules, 10 ms with one), so the server holds one case at a time.
func PutPolicy(ctx context.Context, client *http.Client, baseURL string, c *Case) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+"/v1/policies/case", strings.NewReader(c.Module))
	if err != nil {
		return fmt.Errorf("filterdiff: %s: %w", c.Name, err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("filterdiff: %s: %w", c.Name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("filterdiff: %s: PUT policy: status %d: %s", c.Name, resp.StatusCode, raw)
	}
	return nil
}

// WriteData writes data.json into dir, as an OPA server loads it (opa run
// --server dir).
func WriteData(dir string) error {
	raw, err := json.Marshal(Data())
	if err != nil {
		return fmt.Errorf("filterdiff: data: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), raw, 0o644); err != nil {
		return fmt.Errorf("filterdiff: %w", err)
	}
	return nil
}
