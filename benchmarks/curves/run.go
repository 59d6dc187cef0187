package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// opaResult is what the driver measures of an OPA server process.
type opaResult struct {
	ReadySeconds float64 `json:"ready_s"` // from exec until GET /health answers 200
	CPUSeconds   float64 `json:"cpu_s"`   // user and system CPU time by then
	RSSBytes     int64   `json:"rss"`
	HWMBytes     int64   `json:"hwm"`
	P50Nanos     float64 `json:"p50_ns"` // POST /v1/data/httpapi/authz/allow over loopback
	P99Nanos     float64 `json:"p99_ns"`
}

// point is one size of one curve, both systems measured one after the
// other on the same generated directory.
type point struct {
	Curve  string       `json:"curve"` // rules or data
	Size   int          `json:"size"`
	Store  string       `json:"store"`
	Bytes  int64        `json:"bytes"`
	Engine engineResult `json:"engine"`
	OPA    opaResult    `json:"opa"`
	// Serve is the regoguard serve process (the serve curve only).
	Serve *serveResult `json:"serve,omitempty"`
}

// Results is the whole run, written as JSON and read back to draw.
type Results struct {
	Started    string             `json:"started"`
	Machine    string             `json:"machine"`
	LoadBefore string             `json:"load_before"`
	LoadAfter  string             `json:"load_after"`
	Points     []point            `json:"points"`
	Activation []activationResult `json:"activation"`
}

func runAll(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	curves := fs.String("curves", "rules,scan,data,serve,activation", "curves to measure (scan: rules the index cannot select; serve: regoguard serve with its defaults against opa run)")
	serveEntries := fs.String("serve-entries", "10000,1000000", "data sizes (documents) of the serve curve")
	regoguard := fs.String("regoguard", "", "regoguard binary for the serve curve (default: built from the workspace's cmd/regoguard)")
	rules := fs.String("rules", "10,100,1000,10000", "policy sizes (rules)")
	entries := fs.String("entries", "1000,100000,1000000", "data sizes (documents)")
	stores := fs.String("stores", "flat,compact,read", "engine stores, each against the matching opa run flag (flat and compact: opa run's default store; read: --optimize-store-for-read-speed)")
	n := fs.Int("n", 2000, "engine decisions timed per point")
	opaN := fs.Int("opa-n", 500, "OPA decisions timed per point")
	actEntries := fs.Int("act-entries", 100000, "documents in each revision of the activation test")
	rate := fs.Int("rate", 1000, "requests per second during the activation test")
	opaTimeout := fs.Duration("opa-timeout", 5*time.Minute, "longest wait for opa run to be healthy")
	out := fs.String("out", "results/curves.json", "write the results here")
	chart := fs.String("chart", "curves.svg", "draw the chart here (empty: none)")
	from := fs.String("from", "", "draw and print from an earlier results file instead of measuring")
	_ = fs.Parse(args)

	var res Results
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return err
		}
	} else {
		opa, err := exec.LookPath("opa")
		if err != nil {
			return fmt.Errorf("opa not found on PATH (go install github.com/open-policy-agent/opa@v1.22.3): %w", err)
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		tmp, err := os.MkdirTemp("", "curves-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		res = Results{Started: time.Now().UTC().Format(time.RFC3339), Machine: machine(), LoadBefore: loadavg()}
		m := measurer{opa: opa, self: self, tmp: tmp, n: *n, opaN: *opaN, regoguard: *regoguard, opaTimeout: *opaTimeout}
		if m.regoguard == "" && strings.Contains(*curves, "serve") {
			m.regoguard = filepath.Join(tmp, "regoguard")
			// Resolved through the workspace (go.work) from anywhere in it.
			build := exec.Command("go", "build", "-o", m.regoguard, "github.com/regoguard/regoguard/cmd/regoguard")
			build.Stderr = os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("build regoguard (or give -regoguard): %w", err)
			}
		}
		storeList := strings.Split(*stores, ",")
		for _, curve := range strings.Split(*curves, ",") {
			switch curve {
			case "rules", "scan":
				for _, size := range ints(*rules) {
					// No data: the store makes no difference; the default.
					p, err := m.point(curve, size, "flat")
					if err != nil {
						return err
					}
					res.Points = append(res.Points, p)
				}
			case "data":
				for _, size := range ints(*entries) {
					for _, store := range storeList {
						p, err := m.point("data", size, store)
						if err != nil {
							return err
						}
						res.Points = append(res.Points, p)
					}
				}
			case "serve":
				for _, size := range ints(*serveEntries) {
					p, err := m.servePoint(size)
					if err != nil {
						return err
					}
					res.Points = append(res.Points, p)
				}
			case "activation":
				for _, store := range storeList {
					a, err := m.activation(*actEntries, store, *rate)
					if err != nil {
						return err
					}
					res.Activation = append(res.Activation, a...)
				}
			default:
				return fmt.Errorf("unknown curve %q", curve)
			}
		}
		res.LoadAfter = loadavg()
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		if err := writeJSON(*out, res); err != nil {
			return err
		}
	}
	printTables(os.Stdout, res)
	if *chart != "" {
		return os.WriteFile(*chart, []byte(drawSVG(res)), 0o644)
	}
	return nil
}

type measurer struct {
	opa, self, tmp, regoguard string
	n, opaN                   int
	opaTimeout                time.Duration
}

func (m measurer) gen(curve string, size, rev int) (testCase, error) {
	dir, err := os.MkdirTemp(m.tmp, fmt.Sprintf("%s-%d-", curve, size))
	if err != nil {
		return testCase{}, err
	}
	if curve == "rules" || curve == "scan" {
		return genRules(dir, size, curve == "scan")
	}
	return genData(dir, size, rev)
}

func (m measurer) point(curve string, size int, store string) (point, error) {
	fmt.Fprintf(os.Stderr, "curves: %s %d store=%s (load %s)\n", curve, size, store, loadavg())
	c, err := m.gen(curve, size, 0)
	if err != nil {
		return point{}, err
	}
	defer os.RemoveAll(c.dir)
	inputFile := c.dir + ".input.json"
	if err := writeJSON(inputFile, c.input); err != nil {
		return point{}, err
	}
	p := point{Curve: curve, Size: size, Store: store, Bytes: c.bytes}
	// The engine first, in a process of its own.
	cmd := exec.Command(m.self, "engine", "-dir", c.dir, "-input", inputFile, "-store", store, "-n", strconv.Itoa(m.n))
	cmd.Stderr = io.Discard
	outb, err := cmd.Output()
	if err != nil {
		return p, fmt.Errorf("engine %s %d: %w", curve, size, err)
	}
	if err := json.Unmarshal(outb, &p.Engine); err != nil {
		return p, err
	}
	// Then the OPA server, on the same directory.
	if p.OPA, err = m.opaPoint(c, store); err != nil {
		return p, err
	}
	return p, nil
}

// startOPA runs opa run --server on a free loopback port with the store
// option matching the engine's, and returns once GET /health answers 200.
func (m measurer) startOPA(dir, store string) (*exec.Cmd, string, time.Duration, error) {
	cmd, url, ready, _, err := m.startOPACPU(dir, store)
	return cmd, url, ready, err
}

// startOPACPU is startOPA that also reports the CPU time OPA took to be ready.
func (m measurer) startOPACPU(dir, store string) (*exec.Cmd, string, time.Duration, float64, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", 0, 0, err
	}
	args := []string{"run", "--server", "--skip-version-check", "--log-level", "error", "--addr", "127.0.0.1:" + port}
	if store == "read" {
		args = append(args, "--optimize-store-for-read-speed")
	}
	cmd := exec.Command(m.opa, append(args, dir)...)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", 0, 0, err
	}
	url := "http://127.0.0.1:" + port
	for time.Since(start) < m.opaTimeout {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, url, time.Since(start), procCPU(cmd.Process.Pid), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, "", 0, 0, fmt.Errorf("opa on %s not healthy after %v", dir, m.opaTimeout)
}

func (m measurer) opaPoint(c testCase, store string) (opaResult, error) {
	cmd, url, ready, cpu, err := m.startOPACPU(c.dir, store)
	if err != nil {
		return opaResult{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	r := opaResult{ReadySeconds: ready.Seconds(), CPUSeconds: cpu}
	body, _ := json.Marshal(map[string]any{"input": c.input})
	client := &http.Client{Timeout: 10 * time.Second}
	lat := make([]float64, 0, m.opaN)
	for i := range m.opaN + m.opaN/10 {
		start := time.Now()
		resp, err := client.Post(url+"/v1/data/httpapi/authz/allow", "application/json", bytes.NewReader(body))
		if err != nil {
			return r, err
		}
		var out struct{ Result bool }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		el := time.Since(start)
		if err != nil || !out.Result {
			return r, fmt.Errorf("opa decision: %v %v: the reference request must be allowed", out, err)
		}
		if i >= m.opaN/10 {
			lat = append(lat, float64(el.Nanoseconds()))
		}
	}
	r.P50Nanos, r.P99Nanos = quantile(lat, 0.5), quantile(lat, 0.99)
	r.RSSBytes, r.HWMBytes = procMemory(cmd.Process.Pid)
	return r, nil
}

// activation measures both systems under the same paced load while a
// second revision of the same size is activated.
func (m measurer) activation(entries int, store string, rate int) ([]activationResult, error) {
	fmt.Fprintf(os.Stderr, "curves: activation %d store=%s (load %s)\n", entries, store, loadavg())
	a, err := m.gen("act", entries, 0)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(a.dir)
	b, err := m.gen("act", entries, 1)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.dir)
	inputFile := a.dir + ".input.json"
	if err := writeJSON(inputFile, a.input); err != nil {
		return nil, err
	}
	cmd := exec.Command(m.self, "engine-activation", "-a", a.dir, "-b", b.dir, "-input", inputFile,
		"-store", store, "-rate", strconv.Itoa(rate))
	cmd.Stderr = io.Discard
	outb, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("engine activation: %w", err)
	}
	var er activationResult
	if err := json.Unmarshal(outb, &er); err != nil {
		return nil, err
	}
	er.Entries = entries

	proc, url, _, err := m.startOPA(a.dir, store)
	if err != nil {
		return nil, err
	}
	defer func() { proc.Process.Kill(); proc.Wait() }()
	or, err := opaActivation(url, b.dir, a.input, 2, rate, 1500*time.Millisecond, 500*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("opa activation: %w", err)
	}
	or.Store, or.Entries = store, entries
	return []activationResult{er, or}, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func ints(s string) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	opaVersion := "?"
	if out, err := exec.CommandContext(context.Background(), "opa", "version").Output(); err == nil {
		opaVersion, _, _ = strings.Cut(strings.TrimPrefix(string(out), "Version: "), "\n")
	}
	return fmt.Sprintf("%d cores (%s), %s %s/%s, OPA %s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH, opaVersion)
}
