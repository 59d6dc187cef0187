package main

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/regoguard/regoguard/authz"
)

// checkExtras are check's flags for replaying decision logs, failing on
// changed decisions and measuring coverage.
type checkExtras struct {
	replay       string
	failOnChange bool
	cov          *cover.Cover // with --coverage
}

func (o *checkExtras) registerExtras(fs *pflag.FlagSet) {
	fs.StringVar(&o.replay, "replay", "", "re-decide the decision events of FILE (serve --decision-log-file, OPA console decision logs or a collector upload; gzip or not) with --policy and report what changes")
	fs.BoolVar(&o.failOnChange, "fail-on-change", false, "with --diff or --replay: exit 1 when a decision changes")
}

// checkEvaluator is what judges the cases: the policy in paths, or, with
// --opa-url and no --policy, the remote OPA (as serve would ask it).
// With cov, the policy's evaluations are traced for --coverage.
func (o *checkOptions) checkEvaluator(ctx context.Context, paths []string, logger *slog.Logger, cov *cover.Cover) (authz.Evaluator, error) {
	if len(paths) == 0 {
		r, err := o.remote()
		if err != nil {
			return nil, err
		}
		if r != nil {
			return r, nil
		}
	}
	e, err := o.loadEngine(ctx, paths, logger)
	if err != nil || cov == nil {
		return e, err
	}
	return coverageEvaluator{e: e, cov: cov}, nil
}

// changes counts the results whose decision --diff changes.
func changes(results []checkResult) int {
	n := 0
	for _, r := range results {
		if r.Changed {
			n++
		}
	}
	return n
}

// junitSeconds formats a duration in decimal seconds, as JUnit readers
// expect: never Go's exponent form (1.2e-05).
func junitSeconds(s float64) string { return strconv.FormatFloat(s, 'f', 6, 64) }

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
