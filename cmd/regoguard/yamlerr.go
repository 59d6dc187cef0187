package main

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlTypes are the types of the YAML files regoguard reads strictly, by the
// name yaml.v3 gives them in its errors: their fields are what a misspelt
// field is compared with.
var yamlTypes = map[string]reflect.Type{
	"main.casesFile":    reflect.TypeFor[casesFile](),
	"main.testCase":     reflect.TypeFor[testCase](),
	"main.caseRequest":  reflect.TypeFor[caseRequest](),
	"main.caseIdentity": reflect.TypeFor[caseIdentity](),
	"main.caseExpect":   reflect.TypeFor[caseExpect](),
}

var yamlFieldNotFound = regexp.MustCompile(`field (\S+) not found in type|unknown field "([^"]+)"`)

// withYAMLHint adds the closest field of t to an error about an unknown
// field of a YAML file another package read (the API key file).
func withYAMLHint(err error, t reflect.Type) error {
	m := yamlFieldNotFound.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	if hint := didYouMean(m[1]+m[2], yamlFields(t), strconv.Quote); hint != "" {
		return fmt.Errorf("%w%s", err, hint)
	}
	return err
}

var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
)

// explainYAML rewrites yaml.v3's decoding errors for a person: each one on
// its own line as file:line, naming the field by its path in the file
// (cases[0].expect.allow), with the closest known field for a misspelt one
// and what was wanted, in YAML's words rather than Go's types, for a value
// of the wrong kind:
//
//	cases.yaml:4: cases[0].expect.allow: "maybe" is not a boolean (true or false)
func explainYAML(path string, root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", path, err)
	}
	fields := yamlFieldsOf(root)
	lines := make([]string, 0, len(te.Errors))
	for _, msg := range te.Errors {
		if m := yamlUnknownField.FindStringSubmatch(msg); m != nil {
			hint := ""
			if t, ok := yamlTypes[m[3]]; ok {
				hint = didYouMean(m[2], yamlFields(t), strconv.Quote)
			}
			line, _ := strconv.Atoi(m[1])
			field := ""
			if p := findYAMLField(fields, line, m[2], "", ""); p != "" {
				field = p + ": "
			}
			lines = append(lines, fmt.Sprintf("%s:%s: %sunknown field %q%s", path, m[1], field, m[2], hint))
			continue
		}
		lines = append(lines, path+":"+strings.TrimPrefix(friendlyYAML(msg, fields), "line "))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// yamlFields lists the YAML names of a struct's fields.
func yamlFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name != "-" {
			names = append(names, name)
		}
	}
	return names
}
