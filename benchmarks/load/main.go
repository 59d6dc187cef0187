// Command load measures the throughput of `regoguard serve` under wrk on
// loopback, side by side: the policy in-process, the policy on a remote OPA
// server, and the same proxy with authorization off. Each run is bounded by
// -duration; everything it starts is stopped when it ends.
//
// Three variants of the in-process mode show what moves the figure: the
// whole decision document evaluated for every request (--whole-decision),
// Go's default garbage collector target (--gc-heap-floor 0), and the
// decision cache.
//
//	cd benchmarks && go run ./load -duration 5s -rounds 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

const apiKey = "load-test-key-0123456789"

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "rounds; each runs every mode once, in turn, so that a change in the machine's load hits every mode alike")
	connections := flag.Int("connections", 32, "wrk connections")
	threads := flag.Int("threads", 2, "wrk threads")
	policyDir := flag.String("policy", "benchmarks/testdata/small", "policy directory")
	flag.Parse()
	if err := run(*duration, *rounds, *connections, *threads, *policyDir); err != nil {
		log.Fatal(err)
	}
}

type mode struct {
	name string
	args []string
}

func run(d time.Duration, rounds, conns, threads int, policyDir string) error {
	for _, tool := range []string{"wrk", "opa"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed: apt-get install wrk; go install github.com/open-policy-agent/opa@v1.22.3", tool)
		}
	}
	tmp, err := os.MkdirTemp("", "regoguard-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "regoguard")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../cmd/regoguard" // a module of its own
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building regoguard: %v\n%s", err, out)
	}
	keys := filepath.Join(tmp, "keys.yaml")
	if err := os.WriteFile(keys, []byte("keys:\n  - key: "+apiKey+"\n    subject: loader\n    claims: {groups: [staff]}\n"), 0o600); err != nil {
		return err
	}
	upstream, stopUpstream, err := startUpstream()
	if err != nil {
		return err
	}
	defer stopUpstream()
	opaAddr, stopOPA, err := startOPA(policyDir)
	if err != nil {
		return err
	}
	defer stopOPA()

	common := []string{"--upstream", upstream, "--api-keys", keys, "--log-level", "error"}
	modes := []mode{
		{"authorization off", []string{"--no-authz"}},
		{"in-process", []string{"--policy", policyDir}},
		{"remote OPA", []string{"--opa-url", "http://" + opaAddr}},
		{"in-process, whole document", []string{"--policy", policyDir, "--whole-decision"}},
		{"in-process, Go's GC target", []string{"--policy", policyDir, "--gc-heap-floor", "0"}},
		{"in-process, cached", []string{"--policy", policyDir, "--decision-cache", "10000", "--decision-cache-key", "method,path,user"}},
	}
	urls := make([]string, len(modes))
	for i, m := range modes {
		url, stop, err := startServe(bin, append(common, m.args...))
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		defer stop()
		urls[i] = url
	}
	rps := make([][]float64, len(modes))
	for round := 1; round <= rounds; round++ {
		for i, m := range modes {
			r, err := runWrk(urls[i], d, conns, threads)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			rps[i] = append(rps[i], r.rps)
			fmt.Printf("round %d  %-27s %10.0f req/s  p50 %-9s p99 %s\n", round, m.name, r.rps, r.p50, r.p99)
		}
	}
	// Ratios are taken within each round, then the median of the rounds.
	ratio := func(a, b int) float64 {
		rs := make([]float64, rounds)
		for i := range rs {
			rs[i] = rps[a][i] / rps[b][i]
		}
		return median(rs)
	}
	fmt.Printf("\nmedian of %d rounds of %s, %d connections, %d wrk threads:\n", rounds, d, conns, threads)
	for i, m := range modes {
		fmt.Printf("  %-27s %10.0f req/s\n", m.name, median(rps[i]))
	}
	for i := 1; i < len(modes); i++ {
		fmt.Printf("%-27s keeps %3.0f%% of the throughput with authorization off\n", modes[i].name, 100*ratio(i, 0))
	}
	fmt.Printf("in-process: %.2fx the throughput of remote OPA\n", ratio(1, 2))
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type wrkResult struct {
	rps      float64
	p50, p99 string
	non2xx   int
}

// startServe starts `regoguard serve` on a free port and waits until it
// answers the load's request.
func startServe(bin string, args []string) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	url := "http://" + addr + "/orders/42"
	if err := waitStatus(url, 200); err != nil {
		stop()
		return "", nil, err
	}
	return url, stop, nil
}

func runWrk(url string, d time.Duration, conns, threads int) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", d.String(), "--latency", "-H", "X-API-Key: "+apiKey, url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	rpsLine    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	p50Line    = regexp.MustCompile(`\s50%\s+(\S+)`)
	p99Line    = regexp.MustCompile(`\s99%\s+(\S+)`)
	non2xxLine = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
)

func parseWrk(out string) (wrkResult, error) {
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	r := wrkResult{}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := p50Line.FindStringSubmatch(out); m != nil {
		r.p50 = m[1]
	}
	if m := p99Line.FindStringSubmatch(out); m != nil {
		r.p99 = m[1]
	}
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if r.non2xx > 0 {
		return r, fmt.Errorf("%d responses were not 2xx: the run measured refusals, not the proxy", r.non2xx)
	}
	return r, nil
}

func startUpstream() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func startOPA(policyDir string) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("opa", "run", "--server", "--skip-version-check", "--addr", addr, "--log-level", "error", policyDir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := waitStatus("http://"+addr+"/health", 200); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}

func waitStatus(url string, want int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-API-Key", apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering %d: %w", url, want, err)
		}
		time.Sleep(50 * time.Millisecond)
		if errors.Is(err, context.Canceled) {
			return err
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
