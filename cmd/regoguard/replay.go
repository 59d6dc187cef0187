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
	// Notes say where a flag given on the command line disagrees with what
	// the events recorded, and which one the replay followed.
	Notes    []string `json:"notes,omitempty"`
	Duration float64  `json:"duration_seconds"`
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
	if len(o.policies) == 0 && o.opaURL == "" {
		return configErrorf("--replay needs the candidate policy: --policy or --opa-url")
	}
	r := &replayer{o: o, routes: map[string]*replayGroup{}, users: map[string]*replayGroup{}, noted: map[string]bool{},
		rep: replayReport{File: o.replay, NotReplayable: map[string]int{}, Skipped: map[string]int{}, ByDirection: map[string]int{}}}
	start := time.Now()
	if err := readEvents(o.replay, func(ev map[string]any) { r.replayOne(ctx, ev) }, func(reason string) { r.rep.Skipped[reason]++ }); err != nil {
		return fmt.Errorf("--replay: %w", err)
	}
	if r.err == nil && r.eval == nil {
		r.candidate(ctx, "") // nothing to replay: still refuse a candidate that does not compile
	}
	if r.err != nil {
		return r.err
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
	o *checkOptions
	// eval is the candidate, made at the first event that can be
	// replayed: its decision path is the one the log recorded, unless
	// --decision was given.
	eval     authz.Evaluator
	decision ast.Ref
	err      error
	rep      replayReport
	routes   map[string]*replayGroup
	users    map[string]*replayGroup
	noted    map[string]bool
}

// note adds a note to the report, once.
func (r *replayer) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	if !r.noted[n] {
		r.noted[n] = true
		r.rep.Notes = append(r.rep.Notes, n)
	}
}

// candidate makes the evaluator the first time an event can be replayed,
// deciding the recorded path unless --decision says otherwise.
func (r *replayer) candidate(ctx context.Context, path string) bool {
	if r.eval != nil || r.err != nil {
		return r.err == nil
	}
	if path != "" {
		if r.o.explicit("decision") {
			if ref, err := policy.DecisionRef(r.o.decision); err == nil && ref.String() != canonicalPath(path) {
				r.note("--decision %s disagrees with the log (%s): the candidate decides %s for every event", r.o.decision, canonicalPath(path), ref)
			}
		} else {
			r.o.decision = path
		}
	}
	want, err := policy.DecisionRef(r.o.decision)
	if err != nil {
		r.err = configErrorf("--decision: %w", err)
		return false
	}
	if r.eval, r.err = r.o.replayEvaluator(ctx); r.err != nil {
		return false
	}
	r.decision = want
	return true
}

// canonicalPath writes a recorded decision path as a reference
// (data.httpapi.authz), whatever form it was recorded in.
func canonicalPath(p string) string {
	if ref, err := policy.DecisionRef(p); err == nil {
		return ref.String()
	}
	return p
}

func (r *replayer) replayOne(ctx context.Context, ev map[string]any) {
	if custom, ok := ev["custom"].(map[string]any); ok && custom[authz.ShadowCustomKey] != nil {
		r.rep.Skipped["shadow policy events"]++
		return
	}
	r.rep.Events++
	if r.err != nil {
		return
	}
	how := r.how(ev)
	reason, input, before := r.recorded(ev)
	if reason != "" {
		r.rep.NotReplayable[reason]++
		return
	}
	if !r.candidate(ctx, how.path) {
		return
	}
	if how.path != "" && !r.o.explicit("decision") {
		if ref, err := policy.DecisionRef(how.path); err != nil || !ref.Equal(r.decision) {
			r.rep.NotReplayable[fmt.Sprintf("another decision path (%s)", how.path)]++
			return
		}
	}
	value, err := ast.InterfaceToValue(input)
	if err != nil {
		r.rep.NotReplayable["input is not a JSON document"]++
		return
	}
	r.rep.Replayed++
	req := describeInput(input, how.layout)
	if how.caller != nil {
		req.user, req.anonymous = how.caller.user, how.caller.anonymous
	}
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
	after, beforeLabel := replayOutcome(d, req.anonymous, how.candidateDeny), replayOutcome(before, req.anonymous, how.recordedDeny)
	direction := ""
	switch {
	case err != nil:
		direction, after = changeToError, "error: "+err.Error()
	case beforeLabel == after:
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
			Path: req.path, User: user, Before: beforeLabel, After: after})
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

// replayOutcome is how serve answers d: 200, the policy's status, the deny
// status, or 401 for an anonymous caller (serve then asks to log in).
func replayOutcome(d policy.Decision, anonymous bool, denyStatus int) string {
	if d.Allow {
		return "allow"
	}
	status := d.Status
	switch {
	case status == 0 && anonymous:
		status = http.StatusUnauthorized
	case status == 0:
		status = denyStatus
	}
	return fmt.Sprintf("deny %d", status)
}

// replayHow is how an event is to be re-decided: what serve recorded of
// its own configuration, or the flags for what it did not record.
type replayHow struct {
	path   string // the recorded decision path, "" when none
	layout string
	// recordedDeny answered the recorded decision; candidateDeny answers
	// the candidate's (--deny-status when given, else the recorded one).
	recordedDeny, candidateDeny int
	caller                      *replayCaller // nil when not recorded
}

type replayCaller struct {
	user      string
	anonymous bool
}

// how reads what an event recorded of the decision's making (the
// "regoguard" object under "custom": layout, deny status, caller) and
// notes a flag given on the command line that disagrees with it.
func (r *replayer) how(ev map[string]any) replayHow {
	h := replayHow{layout: r.o.layout, recordedDeny: r.o.denyStatus, candidateDeny: r.o.denyStatus}
	h.path, _ = ev["path"].(string)
	custom, _ := ev["custom"].(map[string]any)
	rec, _ := custom[policy.EventCustomKey].(map[string]any)
	if rec == nil {
		// An event written before events recorded their layout: the
		// fastapi-opa layout is told by its fields.
		if in, _ := ev["input"].(map[string]any); !r.o.explicit("input-layout") && in["request_method"] != nil && in["method"] == nil {
			h.layout = string(authz.LayoutFastAPIOPA)
		}
		return h
	}
	if l, _ := rec["input_layout"].(string); l != "" {
		if r.o.explicit("input-layout") && l != r.o.layout {
			r.note("--input-layout %s disagrees with the log (%s): the recorded inputs were built in the %s layout and are replayed as they are", r.o.layout, l, l)
		}
		h.layout = l
	}
	if n, ok := rec["deny_status"].(json.Number); ok {
		if status, err := n.Int64(); err == nil && status >= 400 && status <= 599 {
			h.recordedDeny, h.candidateDeny = int(status), int(status)
			if r.o.explicit("deny-status") && r.o.denyStatus != h.recordedDeny {
				h.candidateDeny = r.o.denyStatus
				r.note("--deny-status %d disagrees with the log (%d): the candidate answers refusals with %d, so they show as refusal_status changes", r.o.denyStatus, h.recordedDeny, r.o.denyStatus)
			}
		}
	}
	if anon, _ := rec["anonymous"].(bool); anon {
		h.caller = &replayCaller{user: "anonymous", anonymous: true}
	} else if sub, _ := rec["sub"].(string); sub != "" {
		h.caller = &replayCaller{user: sub}
	}
	return h
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
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
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
