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

// yamlFieldsOf lists every value of a YAML document with its path in the
// file (cases[0].expect.allow), so that an error can name the field.
func yamlFieldsOf(root *yaml.Node) []yamlField {
	var fields []yamlField
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				fields = append(fields, yamlField{path: p, key: k.Value, keyLine: k.Line, value: v})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				fields = append(fields, yamlField{path: p, keyLine: -1, value: c})
				walk(c, p)
			}
		}
	}
	if root != nil {
		walk(root, "")
	}
	return fields
}

// yamlField is one value of a cases file, with its path.
type yamlField struct {
	path    string
	key     string
	keyLine int
	value   *yaml.Node
}

// yamlKindTags are the tags the decoder names a node's kind by.
var yamlKindTags = map[yaml.Kind]string{yaml.SequenceNode: "seq", yaml.MappingNode: "map"}

// find returns the path of the field on line that fits: the key named key,
// or the value of that tag (and text).
func findYAMLField(fields []yamlField, line int, key, tag, text string) string {
	for _, f := range fields {
		switch {
		case key != "":
			if f.keyLine == line && f.key == key {
				return f.path
			}
		case f.value.Line == line:
			v := f.value
			if (v.Kind == yaml.ScalarNode && strings.TrimPrefix(v.Tag, "!!") == tag && (text == "" || v.Value == text)) ||
				yamlKindTags[v.Kind] == tag {
				return f.path
			}
		}
	}
	return ""
}

var (
	yamlLine     = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlMismatch = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
	yamlKinds    = map[string]string{"str": "a string", "seq": "a list", "map": "a mapping", "int": "a number",
		"float": "a number", "bool": "a boolean", "null": "empty"}
)

// yamlWants says in YAML's words what a Go type of the cases file takes.
func yamlWants(goType string) string {
	switch {
	case goType == "bool":
		return "a boolean (true or false)"
	case strings.HasPrefix(goType, "int"):
		return "a whole number"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "main."):
		return "a mapping (key: value)"
	}
	return "another kind of value"
}

// friendlyYAML rewrites one of yaml.v3's messages other than an unknown
// field (explainYAML handles those, with a hint): a value of the wrong kind
// names its field and what was wanted.
func friendlyYAML(msg string, fields []yamlField) string {
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	line, rest := m[1], m[2]
	n, _ := strconv.Atoi(line)
	if u := yamlMismatch.FindStringSubmatch(rest); u != nil {
		got := yamlKinds[u[1]]
		if u[2] != "" {
			got = fmt.Sprintf("%q", u[2])
		}
		return fmt.Sprintf("line %s: %s: %s is not %s", line, dash(findYAMLField(fields, n, "", u[1], u[2])), got, yamlWants(u[3]))
	}
	return fmt.Sprintf("line %s: %s", line, rest)
}
