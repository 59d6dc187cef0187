package pipeline

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maskInput returns the input as JSON-compatible values without the fields
// at the given slash-separated paths.
func maskInput(input ast.Value, mask []string) any {
	v, err := ast.JSON(input)
	if err != nil {
		return "unloggable input: " + err.Error()
	}
	for _, p := range mask {
		removePath(v, strings.Split(strings.Trim(p, "/"), "/"))
	}
	return v
}

func removePath(v any, path []string) {
	obj, ok := v.(map[string]any)
	if !ok || len(path) == 0 {
		return
	}
	if len(path) == 1 {
		delete(obj, path[0])
		return
	}
	removePath(obj[path[0]], path[1:])
}
