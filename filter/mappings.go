package filter

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrInvalidMappings is wrapped by the error for mappings whose table or
// column names are not strings.
var ErrInvalidMappings = errors.New("filter: invalid mappings")

// lookupMappings selects the mappings of one target and dialect, as OPA's
// Compile API does: those under the dialect's name, else under the
// target's, else the whole map.
func lookupMappings(m map[string]any, target, dialect string) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	if md := m[dialect]; md != nil {
		sub, ok := md.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w for dialect %s", ErrInvalidMappings, dialect)
		}
		return sub, validateMappings(sub)
	}
	if mt := m[target]; mt != nil {
		sub, ok := mt.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w for target %s", ErrInvalidMappings, target)
		}
		return sub, validateMappings(sub)
	}
	return m, validateMappings(m)
}

func validateMappings(m map[string]any) error {
	for _, table := range slices.Sorted(maps.Keys(m)) {
		tm, ok := m[table].(map[string]any)
		if !ok {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(tm)) {
			switch v := tm[key].(type) {
			case string:
			case map[string]any:
				if key == "$self" || key == "$table" {
					return fmt.Errorf("%w: %s.%s: expected string, got %T", ErrInvalidMappings, table, key, v)
				}
			default:
				return fmt.Errorf("%w: %s.%s: expected string, got %T", ErrInvalidMappings, table, key, v)
			}
		}
	}
	return nil
}

// translateField maps table.column with OPA's targetSQLTableMappings
// semantics: "$self" renames the table, other keys rename columns.
func translateField(f field, m map[string]any) string {
	table, column := mapField(f, m)
	return table + "." + column
}

// mapField is translateField's table and column, apart: a column may hold
// a dot, which SQL must not read as a separator.
func mapField(f field, m map[string]any) (table, column string) {
	table, column = f.table, f.column
	if tm, ok := m[f.table].(map[string]any); ok {
		if name, ok := tm["$self"].(string); ok {
			table = name
		}
		if name, ok := tm[f.column].(string); ok {
			column = name
		}
	}
	return table, column
}
