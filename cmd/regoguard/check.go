package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authz"
)

type checkOptions struct {
	policyOptions
	format    string
	har       string
	asSub     string
	asMethod  string
	asClaims  string
	diff      []string
	skipTests bool
	checkExtras
	coverageOptions
	// changed reports whether a flag was given (on the command line, in
	// the environment or the config file); nil: none was.
	changed func(name string) bool
}

// explicit reports whether the flag name was given rather than defaulted.
func (o *checkOptions) explicit(name string) bool { return o.changed != nil && o.changed(name) }

func newCheckCommand() *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check --policy DIR [CASES.yaml]",
		Short: "Test a policy offline: expected decisions, Rego unit tests, HAR replays, diffs",
		Long: `check evaluates each case of CASES.yaml with exactly the input and the
middleware that serve uses, prints a table, and exits 1 when a decision is not
the one expected or a Rego unit test (*_test.rego) fails.

A case gives a request, an identity (none: anonymous) and the expected
outcome; status is the HTTP status serve would answer:

  cases:
    - name: readers may read
      request: {method: GET, path: "/docs/1?page=2", headers: {Accept: application/json}}
      identity: {sub: alice, method: oidc, claims: {groups: [reader]}}
      expect: {allow: true}
    - name: writers only
      request: {method: POST, path: /docs, body: {title: x}}
      identity: {sub: bob, claims: {groups: [reader]}}
      expect: {allow: false, status: 403, reason: "writers only"}

A case may describe a gRPC call instead, judged by the gRPC interceptors
(package grpcauthz) with the same policy; code is the gRPC status:

    - name: readers list their own tenant's orders
      grpc: {method: /shop.Orders/List, metadata: {x-tenant: acme}, message: {page_size: 10}}
      identity: {sub: alice, claims: {groups: [reader], tenant: acme}}
      expect: {allow: true, code: OK}

A case may test a list filter instead (regoguard filter): the rule compiled for
a known input is run over candidate rows in an in-memory SQLite database and
compared row for row with full evaluation and with the rows expected:

    - name: alice sees her own documents and the public ones
      filter: {query: data.filters.include, unknowns: [input.docs], input: {user: alice},
               rows: rows.json, expect: [1, 2, 5]}`,
		Example: `  regoguard check --policy policy/ cases.yaml
  regoguard check --policy policy/ cases.yaml --format junit > report.xml
  regoguard check --policy policy/ --har session.har --as alice --as-claims '{"groups":["staff"]}'
  regoguard check --policy policy/ cases.yaml --diff ../main/policy/ --fail-on-change
  regoguard check --policy policy/ cases.yaml --coverage --min-coverage 80
  regoguard check --replay decisions.jsonl --policy new-policy/ --fail-on-change   # serve --decision-log-file`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.changed = func(name string) bool { return cmd.Flags().Changed(name) }
			return o.run(cmd.Context(), cmd.OutOrStdout(), args)
		},
	}
	fs := cmd.Flags()
	o.register(fs)
	fs.StringVar(&o.format, "format", "text", "report format: text, json or junit")
	fs.StringVar(&o.har, "har", "", "replay the requests of a HAR 1.2 archive")
	fs.StringVar(&o.asSub, "as", "", "subject of the identity the HAR requests are made by (none: anonymous)")
	fs.StringVar(&o.asMethod, "as-method", "oidc", "authentication method of that identity")
	fs.StringVar(&o.asClaims, "as-claims", "", "claims of that identity, as a JSON object")
	fs.StringArrayVar(&o.diff, "diff", nil, "another policy (files or directories, repeatable): list the requests whose decision it changes")
	fs.BoolVar(&o.skipTests, "skip-rego-tests", false, "do not run the policy's own *_test.rego unit tests")
	o.registerExtras(fs)
	o.registerCoverage(fs)
	return withLayers(cmd)
}

// checkResult is one row of the report.
type checkResult struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // case, har or rego-test
	Source   string   `json:"source"`
	Request  string   `json:"request,omitempty"`
	User     string   `json:"user,omitempty"`
	Expected string   `json:"expected,omitempty"`
	Got      *outcome `json:"got,omitempty"`
	Other    *outcome `json:"other,omitempty"` // under --diff
	Failure  string   `json:"failure,omitempty"`
	Changed  bool     `json:"changed,omitempty"`
	Duration float64  `json:"duration_seconds"`
	Filter   *rowSets `json:"filter,omitempty"`
}

func (o *checkOptions) run(ctx context.Context, out io.Writer, args []string) error {
	if err := o.validate(); err != nil {
		return err
	}
	if err := oneOf("format", o.format, "text", "json", "junit"); err != nil {
		return err
	}
	if o.replay != "" {
		if len(args) > 0 {
			return configErrorf("--replay takes no CASES.yaml")
		}
		return o.runReplay(ctx, out)
	}
	if len(o.policies) == 0 && o.opaURL == "" {
		return configErrorf("--policy is required (or --opa-url, to ask a remote OPA)")
	}
	if len(args) == 0 && o.har == "" {
		return configErrorf("give a CASES.yaml file, --har, or both")
	}
	cases, err := o.cases(args)
	if err != nil {
		return configError{err}
	}
	if o.coverage {
		if len(o.policies) == 0 {
			return configErrorf("--coverage needs --policy: a remote OPA's coverage cannot be measured from here")
		}
		o.cov = cover.New()
	}
	quiet := slog.New(slog.DiscardHandler)
	var j *judge
	if !onlyFilterCases(cases) {
		if j, err = o.judgeFor(ctx, o.policies, quiet, o.cov); err != nil {
			return err
		}
	}
	fc, err := o.filterCheckerFor(ctx, cases)
	if err != nil {
		return err
	}
	var other *judge
	if len(o.diff) > 0 {
		if other, err = o.judgeFor(ctx, o.diff, quiet, nil); err != nil {
			return fmt.Errorf("--diff: %w", err)
		}
	}
	results := make([]checkResult, 0, len(cases))
	for _, c := range cases {
		if c.Filter != nil {
			results = append(results, runFilterCase(ctx, c, fc))
			continue
		}
		results = append(results, o.runCase(ctx, c, j, other))
	}
	if !o.skipTests && len(o.policies) > 0 {
		tests, err := runRegoTests(ctx, o.policies, o.astRegoVersion(), o.cov)
		if err != nil {
			return err
		}
		results = append(results, tests...)
	}
	var covRep *coverageReport
	if o.cov != nil {
		if covRep, err = o.coverageOf(o.cov); err != nil {
			return err
		}
	}
	if err := report(out, o.format, results, len(o.diff) > 0, covRep); err != nil {
		return err
	}
	if n := failures(results); n > 0 {
		return fmt.Errorf("%d of %d checks failed", n, len(results))
	}
	if covRep != nil && covRep.BelowMinimum {
		return fmt.Errorf("coverage %.1f%% is below --min-coverage %.1f%%", covRep.Coverage, covRep.MinCoverage)
	}
	if n := changes(results); n > 0 && o.failOnChange {
		return fmt.Errorf("%d of %d requests change decision under --diff (--fail-on-change)", n, len(results))
	}
	return nil
}

func (o *checkOptions) cases(args []string) ([]testCase, error) {
	var cases []testCase
	if len(args) == 1 {
		c, err := readCases(args[0])
		if err != nil {
			return nil, err
		}
		cases = c
	}
	if o.har != "" {
		var id *caseIdentity
		if o.asSub != "" {
			id = &caseIdentity{Sub: o.asSub, Method: o.asMethod, Claims: map[string]any{}}
			if o.asClaims != "" {
				if err := json.Unmarshal([]byte(o.asClaims), &id.Claims); err != nil {
					return nil, fmt.Errorf("--as-claims: not a JSON object: %w", err)
				}
			}
		}
		h, err := readHAR(o.har, id)
		if err != nil {
			return nil, err
		}
		cases = append(cases, h...)
	}
	return cases, nil
}

func (o *checkOptions) judgeFor(ctx context.Context, paths []string, logger *slog.Logger, cov *cover.Cover) (*judge, error) {
	e, err := o.checkEvaluator(ctx, paths, logger, cov)
	if err != nil {
		return nil, err
	}
	cfg := o.middlewareConfig()
	cfg.Evaluator, cfg.Logger = e, logger
	return newJudge(cfg)
}

func (o *checkOptions) runCase(ctx context.Context, c testCase, j, other *judge) checkResult {
	res := checkResult{Name: c.Name, Kind: "case", Source: fmt.Sprintf("%s:%d", c.source, c.line),
		Request: c.Request.Method + " " + c.Request.Path, User: identityLabel(c.Identity)}
	if c.GRPC != nil {
		res.Request = "grpc " + c.GRPC.Method
	}
	if c.Expect == nil {
		res.Kind = "har"
	} else {
		res.Expected = expectLabel(c.Expect)
	}
	start := time.Now()
	got, err := judgeCase(ctx, j, c)
	res.Duration = time.Since(start).Seconds()
	if err != nil {
		res.Failure = err.Error()
		return res
	}
	res.Got = &got
	res.Failure = c.Expect.mismatch(got)
	if res.Failure != "" && c.Identity == nil && c.GRPC == nil && got.Status == http.StatusUnauthorized && !o.allowAnonymous {
		res.Failure += " (a caller without credentials is refused before the policy is asked; --allow-anonymous lets it reach the policy, as serve's demo does)"
	}
	if other != nil {
		theirs, err := judgeCase(ctx, other, c)
		if err != nil {
			res.Failure = "--diff: " + err.Error()
			return res
		}
		res.Other = &theirs
		res.Changed = theirs.Allow != got.Allow || theirs.Status != got.Status
	}
	return res
}

func judgeCase(ctx context.Context, j *judge, c testCase) (outcome, error) {
	if c.GRPC != nil {
		return j.judgeGRPC(ctx, c.GRPC, c.identity())
	}
	r, err := c.httpRequest()
	if err != nil {
		return outcome{}, err
	}
	return j.judge(ctx, r, c.identity()), nil
}

func identityLabel(id *caseIdentity) string {
	if id == nil {
		return "anonymous"
	}
	return id.Sub
}

func expectLabel(e *caseExpect) string {
	var parts []string
	if e.Allow != nil {
		parts = append(parts, map[bool]string{true: "allow", false: "deny"}[*e.Allow])
	}
	if e.Status != 0 {
		parts = append(parts, fmt.Sprint(e.Status))
	}
	if e.Code != "" {
		parts = append(parts, e.Code)
	}
	if e.Reason != "" {
		parts = append(parts, fmt.Sprintf("%q", e.Reason))
	}
	return strings.Join(parts, " ")
}

func outcomeLabel(o *outcome) string {
	if o == nil {
		return "-"
	}
	s := map[bool]string{true: "allow", false: "deny"}[o.Allow] + fmt.Sprintf(" %d", o.Status)
	if o.Code != "" {
		s += " " + o.Code
	}
	if o.Reason != "" && !o.Allow {
		s += fmt.Sprintf(" %q", o.Reason)
	}
	return s
}

// runRegoTests runs the policy's own unit tests, as `opa test` does.
func runRegoTests(ctx context.Context, paths []string, version ast.RegoVersion, cov *cover.Cover) ([]checkResult, error) {
	results, err := loadRegoTests(ctx, paths, version, cov)
	if err != nil {
		return nil, fmt.Errorf("rego unit tests: %w", err)
	}
	out := make([]checkResult, 0, len(results))
	for _, r := range results {
		row := checkResult{Name: strings.TrimPrefix(r.Package, "data.") + "." + r.Name, Kind: "rego-test", Duration: r.Duration.Seconds()}
		if r.Location != nil {
			row.Source = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		switch {
		case r.Error != nil:
			row.Failure = "error: " + r.Error.Error()
		case r.Fail:
			row.Failure = "failed"
		case r.Skip:
			row.Expected = "skipped"
		}
		out = append(out, row)
	}
	return out, nil
}

func failures(results []checkResult) int {
	n := 0
	for _, r := range results {
		if r.Failure != "" {
			n++
		}
	}
	return n
}

func report(w io.Writer, format string, results []checkResult, diff bool, cov *coverageReport) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		doc := map[string]any{"results": results, "failures": failures(results)}
		if cov != nil {
			doc["coverage"] = cov
		}
		return enc.Encode(doc)
	case "junit":
		return junitReport(w, results, cov)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "RESULT\tNAME\tREQUEST\tUSER\tEXPECTED\tGOT"
	if diff {
		header += "\tOTHER POLICY"
	}
	fmt.Fprintln(tw, header)
	for _, r := range results {
		verdict := "ok"
		switch {
		case r.Failure != "":
			verdict = "FAIL"
		case r.Changed:
			verdict = "CHANGED"
		case r.Kind == "har":
			verdict = "-"
		}
		got := outcomeLabel(r.Got)
		if r.Filter != nil {
			got = r.Filter.label()
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", verdict, r.Name, dash(r.Request), dash(r.User), dash(r.Expected), got)
		if r.Kind == "rego-test" {
			line = fmt.Sprintf("%s\t%s\t%s\t-\t-\t%s", verdict, r.Name, r.Source, dash(r.Failure))
		}
		if diff {
			line += "\t" + outcomeLabel(r.Other)
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.Failure != "" && r.Kind != "rego-test" {
			fmt.Fprintf(w, "FAIL %s (%s): %s\n", r.Name, r.Source, r.Failure)
		}
	}
	changed := changes(results)
	if diff {
		fmt.Fprintf(w, "%d of %d requests change decision under the other policy\n", changed, len(results))
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(results)-failures(results), failures(results))
	if cov != nil {
		cov.writeText(w)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

// write writes the suite as an indented JUnit XML document.
func (suite junitSuite) write(w io.Writer) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(suite); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"` // decimal seconds, never an exponent
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func junitReport(w io.Writer, results []checkResult, cov *coverageReport) error {
	suite := junitSuite{Name: "regoguard check", Tests: len(results), Failures: failures(results)}
	for _, r := range results {
		c := junitCase{Name: r.Name, Classname: r.Kind, Time: junitSeconds(r.Duration)}
		if r.Failure != "" {
			c.Failure = &junitFailure{Message: r.Failure, Text: fmt.Sprintf("%s\n%s as %s: got %s", r.Source, r.Request, r.User, outcomeLabel(r.Got))}
		}
		suite.Cases = append(suite.Cases, c)
	}
	if cov != nil {
		c := cov.junitCase()
		suite.Tests++
		if c.Failure != nil {
			suite.Failures++
		}
		suite.Cases = append(suite.Cases, c)
	}
	return suite.write(w)
}

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
