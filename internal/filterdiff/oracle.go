package filterdiff

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// Oracle answers which rows of a case a filter must select: OPA's full
// evaluation of the case's rule, once per row, with input.docs set to the
// row's object (a field absent from it is NULL in the table).
type Oracle struct {
	store storage.Store
}

// NewOracle returns an Oracle over Data().
func NewOracle() (*Oracle, error) {
	data, err := DataValue()
	if err != nil {
		return nil, err
	}
	return &Oracle{store: inmem.NewFromObject(data)}, nil
}

// DataValue is Data() as OPA reads a data.json file: JSON numbers kept as
// json.Number.
func DataValue() (map[string]any, error) {
	raw, err := json.Marshal(Data())
	if err != nil {
		return nil, fmt.Errorf("filterdiff: data: %w", err)
	}
	var data map[string]any
	if err := util.UnmarshalJSON(raw, &data); err != nil {
		return nil, fmt.Errorf("filterdiff: data: %w", err)
	}
	return data, nil
}

// Expect returns the ids of the rows of c that full evaluation includes, in
// the order of c.Rows.
func (o *Oracle) Expect(ctx context.Context, c *Case) ([]int, error) {
	pq, err := rego.New(
		rego.Query(c.Query()),
		rego.Module(c.Filename(), c.Module),
		rego.Store(o.store),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("filterdiff: %s: prepare: %w", c.Name, err)
	}
	user, err := ast.InterfaceToValue(c.Input["user"])
	if err != nil {
		return nil, fmt.Errorf("filterdiff: %s: input: %w", c.Name, err)
	}
	ids := []int{}
	for _, row := range c.Rows {
		doc, err := ast.InterfaceToValue(row.Doc)
		if err != nil {
			return nil, fmt.Errorf("filterdiff: %s: row %d: %w", c.Name, row.ID, err)
		}
		in := ast.NewObject(
			ast.Item(ast.InternedTerm("user"), ast.NewTerm(user)),
			ast.Item(ast.InternedTerm("docs"), ast.NewTerm(doc)),
		)
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(in))
		if err != nil {
			return nil, fmt.Errorf("filterdiff: %s: row %d: eval: %w", c.Name, row.ID, err)
		}
		if len(rs) == 1 && len(rs[0].Expressions) == 1 && rs[0].Expressions[0].Value == true {
			ids = append(ids, row.ID)
		}
	}
	return ids, nil
}
