package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// Directions of a changed decision in a replay.
const (
	changeAllowToDeny = "allow_to_deny"
	changeDenyToAllow = "deny_to_allow"
	changeStatus      = "refusal_status" // refused before and after, with another status
	changeToError     = "to_error"       // the candidate cannot decide: serve would answer 503
)

// replayReport is what check --replay found.
type replayReport struct {
	File string `json:"file"`
	// Events are the decision events read; Replayed those re-decided.
	Events   int `json:"events"`
	Replayed int `json:"replayed"`
	Changed  int `json:"changed"`
	// NotReplayable counts events that cannot be re-decided faithfully, by
	// reason (input erased or masked, input missing, the recorded decision
	// failed, another decision path): never guessed.
	NotReplayable map[string]int `json:"not_replayable"`
	// Skipped counts what is not a decision that was enforced: lines that
	// are no decision event, and a shadow policy's events.
	Skipped     map[string]int  `json:"skipped"`
	ByDirection map[string]int  `json:"by_direction"`
	ByRoute     []replayGroup   `json:"by_route"`
	ByIdentity  []replayGroup   `json:"by_identity"`
	Examples    []replayExample `json:"examples"`
	Duration    float64         `json:"duration_seconds"`
}

// replayGroup counts the decisions of one route (method and path pattern)
// or one identity, and how many changed, by direction.
type replayGroup struct {
	Key     string         `json:"key"`
	Total   int            `json:"total"`
	Changed map[string]int `json:"changed,omitempty"`
}

type replayExample struct {
	DecisionID string `json:"decision_id"`
	Direction  string `json:"direction"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	User       string `json:"user"`
	Before     string `json:"before"`
	After      string `json:"after"`
}

// maxExamplesPerDirection bounds the examples the report shows.
const maxExamplesPerDirection = 5

// replay re-decides the decision events of o.replay with the candidate
// policy (--policy, or --opa-url), as serve would, and reports the changes.
func (o *checkOptions) runReplay(ctx context.Context, out io.Writer) error {
	if o.har != "" || len(o.diff) > 0 || o.coverage {
		return configErrorf("--replay cannot be combined with --har, --diff or --coverage")
	}
	eval, err := o.replayEvaluator(ctx)
	if err != nil {
		return err
	}
	want, err := policy.DecisionRef(o.decision)
	if err != nil {
		return configErrorf("--decision: %w", err)
	}
	r := &replayer{o: o, eval: eval, decision: want, routes: map[string]*replayGroup{}, users: map[string]*replayGroup{},
		rep: replayReport{File: o.replay, NotReplayable: map[string]int{}, Skipped: map[string]int{}, ByDirection: map[string]int{}}}
	start := time.Now()
	if err := readEvents(o.replay, func(ev map[string]any) { r.replayOne(ctx, ev) }, func(reason string) { r.rep.Skipped[reason]++ }); err != nil {
		return fmt.Errorf("--replay: %w", err)
	}
	r.rep.Duration = time.Since(start).Seconds()
	r.rep.ByRoute, r.rep.ByIdentity = sortedGroups(r.routes), sortedGroups(r.users)
	if r.rep.Events == 0 {
		return fmt.Errorf("--replay: %s holds no decision events", o.replay)
	}
	if err := writeReplay(out, o.format, &r.rep); err != nil {
		return err
	}
	if o.failOnChange && r.rep.Changed > 0 {
		return fmt.Errorf("%d of %d replayed decisions change under the candidate policy", r.rep.Changed, r.rep.Replayed)
	}
	return nil
}

// replayEvaluator is the candidate: the local policy, the remote OPA, or
// both, as serve would combine them.
func (o *checkOptions) replayEvaluator(ctx context.Context) (authz.Evaluator, error) {
	remote, err := o.remote()
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	var engine *policy.Engine
	if len(o.policies) > 0 {
		if engine, err = o.loadEngine(ctx, o.policies, quiet); err != nil {
			return nil, err
		}
	}
	if eval := o.combined(engine, remote, quiet); eval != nil {
		return eval, nil
	}
	return nil, configErrorf("--replay needs the candidate policy: --policy or --opa-url")
}

type replayer struct {
	o        *checkOptions
	eval     authz.Evaluator
	decision ast.Ref
	rep      replayReport
	routes   map[string]*replayGroup
	users    map[string]*replayGroup
}

func (r *replayer) replayOne(ctx context.Context, ev map[string]any) {
	if custom, ok := ev["custom"].(map[string]any); ok && custom[authz.ShadowCustomKey] != nil {
		r.rep.Skipped["shadow policy events"]++
		return
	}
	r.rep.Events++
	reason, input, before := r.recorded(ev)
	if reason != "" {
		r.rep.NotReplayable[reason]++
		return
	}
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		r.rep.NotReplayable["input is not a JSON document"]++
		return
	}
	r.rep.Replayed++
	req := describeInput(input, r.o.layout)
	route, user := req.method+" "+pathPattern(req.path), req.user
	count := func(m map[string]*replayGroup, key, direction string) {
		g := m[key]
		if g == nil {
			g = &replayGroup{Key: key}
			m[key] = g
		}
		g.Total++
		if direction != "" {
			if g.Changed == nil {
				g.Changed = map[string]int{}
			}
			g.Changed[direction]++
		}
	}
	d, err := r.eval.Eval(ctx, value)
	after := r.outcome(d, req.anonymous)
	direction := ""
	switch {
	case err != nil:
		direction, after = changeToError, "error: "+err.Error()
	case r.outcome(before, req.anonymous) == after:
	case before.Allow && !d.Allow:
		direction = changeAllowToDeny
	case !before.Allow && d.Allow:
		direction = changeDenyToAllow
	default:
		direction = changeStatus
	}
	count(r.routes, route, direction)
	count(r.users, user, direction)
	if direction == "" {
		return
	}
	r.rep.Changed++
	r.rep.ByDirection[direction]++
	if r.rep.ByDirection[direction] <= maxExamplesPerDirection {
		id, _ := ev["decision_id"].(string)
		r.rep.Examples = append(r.rep.Examples, replayExample{DecisionID: id, Direction: direction, Method: req.method,
			Path: req.path, User: user, Before: r.outcome(before, req.anonymous), After: after})
	}
}

// recorded reads what an event recorded: the input and the decision that
// was enforced, or why it cannot be replayed.
func (r *replayer) recorded(ev map[string]any) (reason string, input any, d policy.Decision) {
	if touchesInput(ev["erased"]) {
		return "input erased by decision-log masking", nil, d
	}
	if touchesInput(ev["masked"]) {
		return "input masked by decision-log masking", nil, d
	}
	input, ok := ev["input"]
	if !ok || input == nil {
		return "no input recorded", nil, d
	}
	if ev["error"] != nil {
		return "the recorded decision failed", nil, d
	}
	if p, ok := ev["path"].(string); ok && p != "" {
		ref, err := policy.DecisionRef(p)
		if err != nil || !ref.Equal(r.decision) {
			return fmt.Sprintf("another decision path (%s)", p), nil, d
		}
	}
	d, err := policy.ParseResult(ev["result"])
	if err != nil {
		return "the recorded result is not a decision", nil, d
	}
	return "", input, d
}

// touchesInput reports whether a list of OPA's erased or masked paths
// names the input or a part of it: the recorded input is then not the one
// that was judged.
func touchesInput(v any) bool {
	l, _ := v.([]any)
	for _, p := range l {
		if s, _ := p.(string); s == "/input" || strings.HasPrefix(s, "/input/") {
			return true
		}
	}
	return false
}

// outcome is how serve answers d: 200, the policy's status, the deny
// status, or 401 for an anonymous caller (serve then asks to log in).
func (r *replayer) outcome(d policy.Decision, anonymous bool) string {
	if d.Allow {
		return "allow"
	}
	status := d.Status
	switch {
	case status == 0 && anonymous:
		status = http.StatusUnauthorized
	case status == 0:
		status = r.o.denyStatus
	}
	return fmt.Sprintf("deny %d", status)
}

type replayRequest struct {
	method, path, user string
	anonymous          bool
}

// describeInput reads the method, path and caller of an input document in
// the given layout.
func describeInput(input any, layout string) replayRequest {
	in, _ := input.(map[string]any)
	str := func(v any) string { s, _ := v.(string); return s }
	req := replayRequest{user: "anonymous"}
	if layout == string(authz.LayoutFastAPIOPA) {
		req.method = str(in["request_method"])
		if segs, ok := in["request_path"].([]any); ok {
			parts := make([]string, len(segs))
			for i, s := range segs {
				parts[i] = str(s)
			}
			req.path = "/" + strings.Join(parts, "/")
		}
		if sub := str(in["sub"]); sub != "" {
			req.user = sub
		}
		return req
	}
	req.method, req.path = str(in["method"]), str(in["path"])
	user, _ := in["user"].(map[string]any)
	if sub := str(user["sub"]); sub != "" {
		req.user = sub
	}
	req.anonymous = user["authenticated"] == false
	return req
}

// pathPattern groups paths that differ only in identifiers: a segment
// holding a digit (an ID, a UUID, a date) becomes {id}.
func pathPattern(p string) string {
	if p == "" {
		return "(no path)"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.ContainsFunc(s, unicode.IsDigit) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

func sortedGroups(m map[string]*replayGroup) []replayGroup {
	out := make([]replayGroup, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[k])
	}
	// Most changes first, then the busiest.
	slices.SortStableFunc(out, func(a, b replayGroup) int {
		if ca, cb := sum(a.Changed), sum(b.Changed); ca != cb {
			return cb - ca
		}
		return b.Total - a.Total
	})
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// readEvents calls each for every decision event in path: regoguard's
// --decision-log-file, OPA's console decision logs (JSON log lines with
// the event's fields), or a collector's upload (JSON arrays), gzipped or
// not. What is not a JSON object with a decision_id is passed to skip with
// the reason.
func readEvents(path string, each func(map[string]any), skip func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	emit := func(v any) {
		for _, item := range flatten(v) {
			obj, ok := item.(map[string]any)
			if !ok || obj["decision_id"] == nil {
				skip("not a decision event")
				continue
			}
			each(obj)
		}
	}
	if first, err := firstByte(br); err != nil {
		return err
	} else if first == '[' {
		return readArrays(path, br, emit, skip)
	}
	// JSON lines, as written by --decision-log-file and OPA's console.
	for line := 1; ; line++ {
		data, tooLong, err := readLine(br, maxReplayEventBytes)
		if tooLong {
			skip(fmt.Sprintf("event larger than %d MiB", maxReplayEventBytes>>20))
		} else if data = bytes.TrimSpace(data); len(data) > 0 {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			var v any
			if derr := dec.Decode(&v); derr != nil || dec.More() {
				skip("not JSON")
			} else {
				emit(v)
			}
		}
		if err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: line %d: %w", path, line, err)
		}
	}
}

// maxReplayEventBytes bounds one decision event read by check --replay (a
// line, or an element of an array); a larger one is skipped and counted.
// With it, replay's memory stays bounded whatever the file holds: events
// are read one at a time, in lines or in arrays.
const maxReplayEventBytes = 16 << 20

// readLine returns the next line without its end, reading at most max
// bytes of it into memory: a longer line is read through and reported as
// tooLong. err is io.EOF after the last line.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch {
		case err == nil:
			return line, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && (len(line) > 0 || tooLong):
			return line, tooLong, nil
		default:
			return line, tooLong, err
		}
	}
}

// readArrays reads a collector's upload: one or more JSON arrays (or
// objects), laid out freely, one element at a time, so that memory stays
// bounded by the largest element whatever the length of an array. An
// element larger than maxReplayEventBytes stops the reading with an error:
// a JSON value cannot be skipped without being read.
func readArrays(path string, r io.Reader, emit func(any), skip func(string)) error {
	lr := &eventLimit{r: r}
	dec := json.NewDecoder(lr)
	dec.UseNumber()
	fail := func(err error) error {
		if errors.Is(err, errEventTooLarge) {
			return fmt.Errorf("%s: an event at byte %d is larger than %d MiB", path, dec.InputOffset(), maxReplayEventBytes>>20)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	for {
		lr.reset()
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return fail(err)
		}
		switch tok {
		case json.Delim('['):
		case json.Delim('{'): // an event between the arrays
			obj := map[string]any{}
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return fail(err)
				}
				var v any
				if err := dec.Decode(&v); err != nil {
					return fail(err)
				}
				k, _ := key.(string)
				obj[k] = v
			}
			if _, err := dec.Token(); err != nil { // the closing }
				return fail(err)
			}
			emit(obj)
			continue
		default:
			skip("not a decision event")
			continue
		}
		for dec.More() {
			lr.reset()
			var v any
			if err := dec.Decode(&v); err != nil {
				return fail(err)
			}
			emit(v)
		}
		if _, err := dec.Token(); err != nil { // the closing ]
			return fail(err)
		}
	}
}

var errEventTooLarge = errors.New("event too large")

// eventLimit lets a JSON decoder read at most maxReplayEventBytes (plus
// what its buffer already held) between two resets.
type eventLimit struct {
	r    io.Reader
	left int
}

func (l *eventLimit) reset() { l.left = maxReplayEventBytes + 1<<16 }

func (l *eventLimit) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errEventTooLarge
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}

// firstByte peeks at the first byte that is not white space, or 0 at EOF.
func firstByte(br *bufio.Reader) (byte, error) {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err == io.EOF || (err == nil && len(b) < i) {
			return 0, nil
		} else if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return 0, err
		} else if err != nil {
			return 0, nil
		}
		if c := b[i-1]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

func flatten(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func writeReplay(w io.Writer, format string, rep *replayReport) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "junit":
		return replayJUnit(w, rep)
	}
	fmt.Fprintf(w, "%s: %d decision events, %d replayed, %d change under the candidate policy\n", rep.File, rep.Events, rep.Replayed, rep.Changed)
	for _, k := range slices.Sorted(maps.Keys(rep.ByDirection)) {
		fmt.Fprintf(w, "  %-16s %d\n", k, rep.ByDirection[k])
	}
	for _, k := range slices.Sorted(maps.Keys(rep.NotReplayable)) {
		fmt.Fprintf(w, "not replayable: %s: %d\n", k, rep.NotReplayable[k])
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Skipped)) {
		fmt.Fprintf(w, "skipped: %s: %d\n", k, rep.Skipped[k])
	}
	groups := func(title string, gs []replayGroup) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\n%s\tDECISIONS\tCHANGED\tALLOW→DENY\tDENY→ALLOW\tSTATUS\tERROR\n", title)
		for _, g := range gs {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", g.Key, g.Total, sum(g.Changed), g.Changed[changeAllowToDeny],
				g.Changed[changeDenyToAllow], g.Changed[changeStatus], g.Changed[changeToError])
		}
		_ = tw.Flush()
	}
	if rep.Replayed > 0 {
		groups("ROUTE", rep.ByRoute)
		groups("IDENTITY", rep.ByIdentity)
	}
	if len(rep.Examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DECISION ID\tREQUEST\tUSER\tBEFORE\tAFTER")
		for _, e := range rep.Examples {
			fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\n", dash(e.DecisionID), e.Method, e.Path, e.User, e.Before, e.After)
		}
		return tw.Flush()
	}
	return nil
}

// replayJUnit writes one test case per route: it fails when a decision
// of that route changes.
func replayJUnit(w io.Writer, rep *replayReport) error {
	suite := junitSuite{Name: "regoguard check --replay " + rep.File, Tests: len(rep.ByRoute)}
	for _, g := range rep.ByRoute {
		c := junitCase{Name: g.Key, Classname: "replay", Time: junitSeconds(0)}
		if n := sum(g.Changed); n > 0 {
			suite.Failures++
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(g.Changed)) {
				parts = append(parts, fmt.Sprintf("%s %d", k, g.Changed[k]))
			}
			c.Failure = &junitFailure{Message: fmt.Sprintf("%d of %d decisions change", n, g.Total), Text: strings.Join(parts, ", ")}
		}
		suite.Cases = append(suite.Cases, c)
	}
	return suite.write(w)
}
