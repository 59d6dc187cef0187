package main_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// policyA, the live policy: anyone may read; writers may do anything.
const policyA = `package httpapi.authz

allow if input.method == "GET"

allow if "writer" in input.user.claims.groups
`

// policyB, the candidate: nobody reads /admin, writers may not delete, and
// anyone may post to /public.
const policyB = `package httpapi.authz

allow if {
	input.method == "GET"
	not startswith(input.path, "/admin")
}

allow if {
	"writer" in input.user.claims.groups
	input.method != "DELETE"
}

allow if {
	input.method == "POST"
	startswith(input.path, "/public")
}
`

// replayJSON is the part of check --replay --format json the test reads.
type replayJSON struct {
	Events, Replayed, Changed int
	ByDirection               map[string]int `json:"by_direction"`
	ByRoute                   []struct {
		Key     string
		Changed map[string]int
	} `json:"by_route"`
	ByIdentity []struct{ Key string } `json:"by_identity"`
	Examples   []struct {
		DecisionID string `json:"decision_id"`
	}
}

// rolloutRequest is one request of the end-to-end test's traffic.
type rolloutRequest struct{ method, path, user string }

var rolloutKeys = map[string]string{"alice": "alice-key-0123456789", "bob": "bob-key-0123456789"}

// rolloutTraffic is a fixed mix of methods, paths and callers (alice reads,
// bob writes, and anonymous callers) of n requests.
func rolloutTraffic(n int) []rolloutRequest {
	methods := []string{"GET", "POST", "DELETE", "GET"}
	prefixes := []string{"/docs", "/admin", "/public"}
	users := []string{"alice", "bob", "", "bob", "alice"}
	out := make([]rolloutRequest, n)
	for i := range out {
		out[i] = rolloutRequest{methods[i%len(methods)], fmt.Sprintf("%s/%d", prefixes[(i/4)%len(prefixes)], i), users[(i/3)%len(users)]}
	}
	return out
}

// allowedBy models the two policies in Go, independently of OPA.
func allowedBy(policy string, r rolloutRequest) bool {
	writer := r.user == "bob"
	if policy == "A" {
		return r.method == "GET" || writer
	}
	return (r.method == "GET" && !strings.HasPrefix(r.path, "/admin")) ||
		(writer && r.method != "DELETE") ||
		(r.method == "POST" && strings.HasPrefix(r.path, "/public"))
}

// expectedChanges is what moving from A to B changes, by direction.
func expectedChanges(traffic []rolloutRequest) map[string]int {
	want := map[string]int{}
	for _, r := range traffic {
		a, b := allowedBy("A", r), allowedBy("B", r)
		switch {
		case a && !b:
			want["allow_to_deny"]++
		case !a && b:
			want["deny_to_allow"]++
		}
	}
	return want
}

func sendTraffic(t *testing.T, s *server, traffic []rolloutRequest, policy string) {
	t.Helper()
	for _, r := range traffic {
		h := map[string]string{}
		if r.user != "" {
			h["X-API-Key"] = rolloutKeys[r.user]
		}
		status, _, _ := s.get(t, r.method, r.path, h)
		want := 200
		switch {
		case allowedBy(policy, r):
		case r.user == "":
			want = 401
		default:
			want = 403
		}
		if status != want {
			t.Fatalf("%s %s as %q: %d, want %d (policy %s)", r.method, r.path, r.user, status, want, policy)
		}
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev["decision_id"] == nil || ev["input"] == nil {
			t.Fatalf("line %d of %s is no decision event: %v %.200s", n+1, path, err, sc.Text())
		}
		n++
	}
	return n
}

// The end-to-end check: serve with policy A writes a decision-log
// file; every line is there after SIGTERM; check --replay against policy B
// reports exactly the changes computed here independently, and
// --fail-on-change exits 1; serve with --shadow-policy B counts the same
// disagreements in /metrics.
func TestRolloutRecordReplayAndShadowAgree(t *testing.T) {
	const n = 300
	traffic := rolloutTraffic(n)
	want := expectedChanges(traffic)
	if want["allow_to_deny"] == 0 || want["deny_to_allow"] == 0 {
		t.Fatalf("the traffic does not exercise both directions: %v", want)
	}
	dir := t.TempDir()
	a, b := writePolicyDir(t, policyA), writePolicyDir(t, policyB)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	logFile := filepath.Join(dir, "decisions.jsonl")

	// 1. Record, and stop with SIGTERM: nothing lost.
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", a, "--api-keys", keys,
		"--allow-anonymous", "--decision-log-file", logFile)
	sendTraffic(t, s, traffic, "A")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logs)
	}
	if got := countLines(t, logFile); got != n {
		t.Fatalf("%d decision events in the file after SIGTERM, want %d", got, n)
	}

	// 2. Replay against B: exactly the changes computed above.
	res := run(t, nil, "check", "--replay", logFile, "--policy", b, "--format", "json")
	if res.code != 0 {
		t.Fatalf("check --replay: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var rep replayJSON
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if rep.Events != n || rep.Replayed != n || rep.Changed != want["allow_to_deny"]+want["deny_to_allow"] ||
		rep.ByDirection["allow_to_deny"] != want["allow_to_deny"] || rep.ByDirection["deny_to_allow"] != want["deny_to_allow"] ||
		len(rep.ByDirection) != 2 {
		t.Errorf("replay found %d events, %d replayed, %d changed %v; want %d, %d, %v", rep.Events, rep.Replayed, rep.Changed, rep.ByDirection, n, n, want)
	}
	if len(rep.Examples) == 0 || len(rep.ByRoute) == 0 || len(rep.ByIdentity) != 3 {
		t.Errorf("report without examples or groups: %+v", rep)
	}
	for _, g := range rep.ByRoute {
		if g.Key == "DELETE /docs/{id}" && g.Changed["allow_to_deny"] == 0 {
			t.Errorf("route DELETE /docs/{id}: %+v, want bob's deletes as allow_to_deny", g)
		}
	}
	if res := run(t, nil, "check", "--replay", logFile, "--policy", b, "--fail-on-change"); res.code != 1 ||
		!strings.Contains(res.stdout, "allow_to_deny") {
		t.Errorf("--fail-on-change with changes: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := run(t, nil, "check", "--replay", logFile, "--policy", a, "--fail-on-change"); res.code != 0 ||
		!strings.Contains(res.stdout, fmt.Sprintf("%d replayed, 0 change", n)) {
		t.Errorf("replay against the recording policy: exit %d, want 0 and no change\n%s%s", res.code, res.stdout, res.stderr)
	}
	// The same events as a collector upload (gzipped JSON array) and as
	// OPA console log lines give the same count.
	for name, data := range map[string][]byte{"upload.json.gz": asGzipArray(t, logFile), "console.log": asConsoleLines(t, logFile)} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res := run(t, nil, "check", "--replay", p, "--policy", b, "--format", "json")
		var r2 replayJSON
		if err := json.Unmarshal([]byte(res.stdout), &r2); err != nil || r2.Changed != rep.Changed || r2.Replayed != n {
			t.Errorf("%s: %v; %d replayed, %d changed; want %d, %d\n%s", name, err, r2.Replayed, r2.Changed, n, rep.Changed, res.stderr)
		}
	}

	// 3. Shadow B beside A: the same disagreements, counted in /metrics.
	s = startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", a, "--api-keys", keys,
		"--allow-anonymous", "--shadow-policy", b, "--admin-listen", "127.0.0.1:0", "--log-format", "json")
	sendTraffic(t, s, traffic, "A") // the live answers are A's
	admin := s.logs.wait(t, adminLine, nil)
	var counts map[string]int
	deadline := time.Now().Add(10 * time.Second)
	for {
		counts = shadowCounts(t, "http://"+admin+"/metrics")
		if counts["agree"]+counts["allow_to_deny"]+counts["deny_to_allow"]+counts["candidate_error"] == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if counts["allow_to_deny"] != want["allow_to_deny"] || counts["deny_to_allow"] != want["deny_to_allow"] ||
		counts["agree"] != n-rep.Changed || counts["candidate_error"] != 0 {
		t.Errorf("shadow metrics %v, want %v and %d agreements", counts, want, n-rep.Changed)
	}
}

var shadowMetricLine = regexp.MustCompile(`(?m)^regoguard_shadow_decisions_total\{result="([a-z_]+)"\} (\d+)$`)

func shadowCounts(t *testing.T, url string) map[string]int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	for _, m := range shadowMetricLine.FindAllStringSubmatch(string(body), -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

func readLines(t *testing.T, path string) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	for line := range bytes.SplitSeq(bytes.TrimSpace(data), []byte("\n")) {
		out = append(out, json.RawMessage(line))
	}
	return out
}

// asGzipArray is the file as a collector receives it from OPA.
func asGzipArray(t *testing.T, path string) []byte {
	events := readLines(t, path)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(events); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// asConsoleLines is the file as OPA's console decision logger prints it: the
// event's fields beside level, msg and time, among other log lines.
func asConsoleLines(t *testing.T, path string) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"level":"info","msg":"Initializing server.","time":"2026-01-01T00:00:00Z"}` + "\n")
	for _, raw := range readLines(t, path) {
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		ev["level"], ev["msg"], ev["time"] = "info", "Decision Log", "2026-01-01T00:00:00Z"
		line, _ := json.Marshal(ev)
		buf.Write(line)
		buf.WriteByte('\n')
	}
	buf.WriteString("a line that is not JSON at all\n")
	return buf.Bytes()
}

func TestServeDryRunLetsRefusalsThroughButNotUnauthenticated(t *testing.T) {
	dir := writePolicyDir(t, policyA)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--api-keys", keys,
		"--dry-run", "--admin-listen", "127.0.0.1:0")
	s.logs.wait(t, regexp.MustCompile(`(DRY RUN)`), nil)
	if status, _, _ := s.get(t, "DELETE", "/docs/1", map[string]string{"X-API-Key": rolloutKeys["alice"]}); status != 200 {
		t.Errorf("a refusal under --dry-run: %d, want 200", status)
	}
	if status, _, _ := s.get(t, "DELETE", "/docs/1", nil); status != 401 {
		t.Errorf("no credential under --dry-run: %d, want 401 (authentication is still enforced)", status)
	}
	if status, _, _ := s.get(t, "DELETE", "/docs/1", map[string]string{"X-API-Key": "wrong-key-0123456789"}); status != 401 {
		t.Errorf("a bad credential under --dry-run: %d, want 401", status)
	}
	s.logs.wait(t, regexp.MustCompile(`(would have refused.*path=/docs/1)`), nil)
	admin := s.logs.wait(t, adminLine, nil)
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "regoguard_dry_run_would_refuse_total 1") {
		t.Errorf("metrics lack regoguard_dry_run_would_refuse_total 1")
	}
	if up.hits() != 1 {
		t.Errorf("upstream saw %d requests, want the one refused by the policy only", up.hits())
	}
}

// The masking rules of --policy files apply to the decision-log file, as a
// bundle's do, and check --replay then counts those events as not
// replayable.
func TestServeDecisionLogFileMaskedByThePolicy(t *testing.T) {
	dir := t.TempDir()
	mask := "package system.log\n\nmask contains \"/input/user/claims\"\n"
	for name, src := range map[string]string{"policy.rego": policyA, "mask.rego": mask} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--api-keys", keys,
		"--decision-log-file", logFile)
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": rolloutKeys["alice"]}); status != 200 {
		t.Fatalf("status %d", status)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "alice@example.com") || !strings.Contains(string(data), `"erased":["/input/user/claims"]`) {
		t.Errorf("the decision-log file is not masked by system.log.mask:\n%s", data)
	}
	res := run(t, nil, "check", "--replay", logFile, "--policy", dir)
	if res.code != 0 || !strings.Contains(res.stdout, "not replayable: input erased by decision-log masking: 1") {
		t.Errorf("replay of a masked event: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestServeShadowBundle(t *testing.T) {
	a, b := writePolicyDir(t, policyA), writePolicyDir(t, policyB)
	traffic := rolloutTraffic(24)
	want := expectedChanges(traffic)
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--bundle", a, "--api-keys", keys,
		"--allow-anonymous", "--shadow-bundle", b, "--admin-listen", "127.0.0.1:0", "--log-format", "json")
	admin := s.logs.wait(t, adminLine, nil)
	waitReady(t, "http://"+admin+"/readyz")
	sendTraffic(t, s, traffic, "A")
	var counts map[string]int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		counts = shadowCounts(t, "http://"+admin+"/metrics")
		if counts["agree"]+counts["allow_to_deny"]+counts["deny_to_allow"]+counts["candidate_error"] == len(traffic) {
			break
		}
	}
	if counts["allow_to_deny"] != want["allow_to_deny"] || counts["deny_to_allow"] != want["deny_to_allow"] || counts["candidate_error"] != 0 {
		t.Errorf("shadow bundle metrics %v, want %v", counts, want)
	}
}

// Issue #24 item 5: serve parsed --policy twice (the engine, then the
// decision log's masks) and a --watch reload updated the engine only: the
// decision log kept masking by the old rules. The masks now follow every
// revision the engine serves, from its one parse.
func TestServeWatchUpdatesDecisionLogMasks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.rego", policyA)
	write("mask.rego", "package system.log\n\nmask contains \"/input/user/claims\"\n")
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--api-keys", keys,
		"--watch", "--decision-log-file", logFile)
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": rolloutKeys["alice"]}); status != 200 {
		t.Fatalf("status %d", status)
	}
	write("mask.rego", "package system.log\n\nmask contains \"/input/path\"\n")
	for deadline := time.Now().Add(15 * time.Second); strings.Count(s.logs.String(), "policy loaded") < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("--watch did not reload the policy:\n%s", s.logs)
		}
	}
	if status, _, _ := s.get(t, "GET", "/docs/2", map[string]string{"X-API-Key": rolloutKeys["alice"]}); status != 200 {
		t.Fatalf("status %d", status)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d decision events, want 2:\n%s", len(lines), data)
	}
	if !strings.Contains(lines[0], `"erased":["/input/user/claims"]`) {
		t.Errorf("before the reload, not masked by the first rules:\n%s", lines[0])
	}
	if !strings.Contains(lines[1], `"erased":["/input/path"]`) || strings.Contains(lines[1], `"/docs/2"`) {
		t.Errorf("after the --watch reload, the decision log still masks by the old rules:\n%s", lines[1])
	}
}

// A fastapi-opa migration's rollout: serve in fastapi-opa's layout with
// fastapi-opa's 401 and API keys records its decisions; check --replay,
// given only the candidate policy (no layout, deny-status or decision
// flag), re-decides them as serve did, names the API-key callers and
// keeps the recorded 401s; a --deny-status that disagrees is noted.
func TestReplayOfAFastAPIOPALayoutLogNeedsNoFlags(t *testing.T) {
	current := "package shop.authz\n\nallow if {\n\tinput.request_method == \"GET\"\n\tinput.request_path[0] == \"finance\"\n}\n"
	candidate := "package shop.authz\n\nallow if {\n\tinput.request_method == \"GET\"\n\tinput.request_path[0] == \"finance\"\n\tinput.user == \"alice\"\n}\n"
	keys := writeFile(t, "keys.yaml", `keys:
  - {key: alice-key-0123456789, subject: alice, claims: {user: alice}}
  - {key: bob-key-01234567890, subject: bob, claims: {user: bob}}
`)
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	up := newUpstream(t)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", writePolicyDir(t, current), "--api-keys", keys,
		"--input-layout", "fastapi-opa", "--deny-status", "401", "--decision", "shop/authz", "--decision-log-file", logFile)
	for _, r := range []struct {
		method, path, key string
		status            int
	}{
		{"GET", "/finance/q3", "alice-key-0123456789", 200},
		{"GET", "/finance/q4", "bob-key-01234567890", 200},
		{"DELETE", "/finance/q3", "bob-key-01234567890", 401},
	} {
		status, h, body := s.get(t, r.method, r.path, map[string]string{"X-API-Key": r.key})
		if status != r.status {
			t.Fatalf("%s %s: %d, want %d: %s", r.method, r.path, status, r.status, body)
		}
		if status == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: a 401 without WWW-Authenticate", r.method, r.path)
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.logs)
	}
	res := run(t, nil, "check", "--replay", logFile, "--policy", writePolicyDir(t, candidate))
	for _, want := range []string{"3 decision events, 3 replayed, 1 change", "GET /finance/{id}", "DELETE /finance/{id}"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("replay lacks %q\n%s%s", want, res.stdout, res.stderr)
		}
	}
	if !regexp.MustCompile(`(?m)^alice\s+1\s+0`).MatchString(res.stdout) || !regexp.MustCompile(`(?m)^bob\s+2\s+1\s+1`).MatchString(res.stdout) ||
		!regexp.MustCompile(`bob\s+allow\s+deny 401`).MatchString(res.stdout) || strings.Contains(res.stdout, "anonymous") || strings.Contains(res.stdout, "note:") {
		t.Errorf("want alice and bob by name, bob's GET allow → deny 401, no note\n%s%s", res.stdout, res.stderr)
	}
	res = run(t, nil, "check", "--replay", logFile, "--policy", writePolicyDir(t, current), "--deny-status", "403")
	if !strings.Contains(res.stdout, "note: --deny-status 403 disagrees with the log (401)") || !strings.Contains(res.stdout, "refusal_status   1") {
		t.Errorf("a disagreeing --deny-status: want a note and bob's DELETE as a status change\n%s%s", res.stdout, res.stderr)
	}
}
