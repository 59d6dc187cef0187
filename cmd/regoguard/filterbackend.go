package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

// maxFilterCompilers bounds the compilers engineFilters keeps, one per rule
// and unknowns asked for: a caller naming ever new paths cannot grow
// memory without bound (the oldest is dropped, and only re-prepared if
// asked for again).
const maxFilterCompilers = 64

// engineFilters compiles Compile API requests with package filter against
// the policy an engine serves (its current revision, always), keeping one
// filter.Compiler per rule and unknowns so that plans and filters are
// cached across requests.
type engineFilters struct {
	src filter.Source

	mu    sync.Mutex
	byKey map[string]*filter.Compiler
	order []string // keys, oldest first
}

func newEngineFilters(src filter.Source) *engineFilters {
	return &engineFilters{src: src, byKey: map[string]*filter.Compiler{}}
}

func (e *engineFilters) compiler(req *filterRequest) (*filter.Compiler, error) {
	unknowns := make([]string, len(req.Unknowns))
	for i, u := range req.Unknowns {
		unknowns[i] = u.String()
	}
	key := req.Query.String() + "\x00" + strings.Join(unknowns, "\x00")
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.byKey[key]; ok {
		return c, nil
	}
	if len(unknowns) == 0 {
		return nil, badCompileRequest("unknowns: name the row, such as [\"input.docs\"] (regoguard does not read unknowns from METADATA annotations)")
	}
	c, err := filter.New(e.src, filter.Config{Query: req.Query.String(), Unknowns: unknowns})
	if err != nil {
		return nil, badCompileRequest("%v", strings.TrimPrefix(err.Error(), "filter: "))
	}
	if len(e.order) >= maxFilterCompilers {
		delete(e.byKey, e.order[0])
		e.order = e.order[1:]
	}
	e.byKey[key] = c
	e.order = append(e.order, key)
	return c, nil
}

func (e *engineFilters) compileFilter(ctx context.Context, req *filterRequest) (*filter.Filter, error) {
	c, err := e.compiler(req)
	if err != nil {
		return nil, err
	}
	f, err := c.Compile(ctx, req.Input)
	if errors.Is(err, policy.ErrNoPolicy) {
		// A bundle not activated yet: unavailable, as serve's requests are.
		return nil, &compileAPIError{Status: http.StatusServiceUnavailable, Code: "internal_error", Message: "no policy loaded yet"}
	}
	if err != nil {
		return nil, err
	}
	// Render every target now, so that a target that cannot express the
	// filter is an error before anything is written.
	for _, t := range req.Targets {
		if _, err := f.Result(t, filter.ResponseOptions{Parameterized: req.Parameterized, Mappings: req.Mappings}); err != nil {
			return nil, err
		}
	}
	return f, nil
}
