package filterdiff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

// regoguard is the translator under test: one policy.Engine holding every
// case's module and the corpus's data, and a filter.Compiler per case.
type regoguard struct {
	engine *policy.Engine
}

func newRegoguard(t testing.TB, cases []*Case) *regoguard {
	t.Helper()
	modules := map[string]string{}
	for _, c := range cases {
		modules[c.Filename()] = c.Module
	}
	data, err := DataValue()
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(modules, data)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(context.Background(), policy.Config{Decision: "data.filters",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, p)
	if err != nil {
		t.Fatal(err)
	}
	return &regoguard{engine: e}
}

// compile compiles the case's rule for its caller. An error that is not a
// *filter.Error (a refusal that names the rule, its place and why) is
// returned as unclear.
func (r *regoguard) compile(ctx context.Context, c *Case) (f *filter.Filter, refused error, unclear error) {
	comp, err := filter.New(r.engine, filter.Config{Query: c.Query(), Unknowns: []string{Unknown}})
	if err != nil {
		return nil, nil, err
	}
	in, err := ast.InterfaceToValue(c.Input)
	if err != nil {
		return nil, nil, err
	}
	f, err = comp.Compile(ctx, in)
	if err != nil {
		refused, unclear = refusal(c, err)
		return nil, refused, unclear
	}
	return f, nil, nil
}

// refusal sorts an error of the translator: a clear refusal, or unclear.
func refusal(c *Case, err error) (refused, unclear error) {
	var fe *filter.Error
	if !errors.As(err, &fe) {
		return nil, fmt.Errorf("not a *filter.Error: %w", err)
	}
	if fe.Rule != c.Query() || fe.Line == 0 || fe.File == "" || fe.Reason == "" {
		return nil, fmt.Errorf("the refusal does not name the rule %s, its file:line and why: %w", c.Query(), err)
	}
	return err, nil
}

// answer renders a compiled filter for a dialect.
func answer(c *Case, f *filter.Filter, dialect string, parameterized bool) (Answer, error) {
	if f.Never() {
		return Answer{Never: true}, nil
	}
	q, err := f.SQL(filter.Dialect(dialect), filter.SQLOptions{Parameterized: parameterized, Mappings: Mapping()})
	if err != nil {
		refused, unclear := refusal(c, err)
		if unclear != nil {
			return Answer{}, unclear
		}
		return Answer{Refused: refused}, nil
	}
	return Answer{Where: q.Where, Args: q.Args}, nil
}
