package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/regoguard/regoguard/policy"
)

// engineResult is what the engine child process reports on standard output.
type engineResult struct {
	ReadSeconds    float64 `json:"read_s"`    // policy.LoadFiles
	CompileSeconds float64 `json:"compile_s"` // policy.New
	RSSBytes       int64   `json:"rss"`       // VmRSS after loading and deciding
	HWMBytes       int64   `json:"hwm"`       // VmHWM: the peak resident memory
	ReadRSSBytes   int64   `json:"read_rss"`  // VmRSS after policy.LoadFiles
	HeapBytes      uint64  `json:"heap"`      // live heap after a GC, at the end
	NewAlloc       uint64  `json:"new_alloc"` // bytes allocated by policy.New
	// CPUSeconds is the process's user and system CPU time when ready:
	// less disturbed than wall time by other work on a shared machine.
	CPUSeconds float64 `json:"cpu_s"`
	P50Nanos   float64 `json:"p50_ns"`
	P99Nanos   float64 `json:"p99_ns"`
}

// runEngine is the child process: it loads a policy directory the way a
// regoguard user does (policy.LoadFiles, then policy.New), times n
// decisions in-process and reports its own resident memory, so that the
// figure is comparable with the OPA server's (a process of its own).
func runEngine(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ExitOnError)
	dir := fs.String("dir", "", "policy directory")
	inputFile := fs.String("input", "", "JSON input file")
	store := fs.String("store", "flat", "store: flat (the default), read (read-optimised AST values) or compact (Go values)")
	n := fs.Int("n", 2000, "decisions to time")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of policy.New")
	memprofile := fs.String("memprofile", "", "write an allocation profile after policy.New")
	_ = fs.Parse(args)

	cfg := policy.Config{}
	var err error
	if cfg.Store, err = storeOption(*store); err != nil {
		return err
	}
	raw, err := os.ReadFile(*inputFile)
	if err != nil {
		return err
	}
	input, err := ast.ValueFromReader(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}

	ctx := context.Background()
	t0 := time.Now()
	p, err := policy.LoadFiles(*dir)
	if err != nil {
		return err
	}
	t1 := time.Now()
	readRSS, _ := procMemory(os.Getpid())
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if *memprofile != "" {
		// The base to subtract (go tool pprof -base): what reading cost.
		f, err := os.Create(*memprofile + ".base")
		if err != nil {
			return err
		}
		runtime.GC() // the profile shows allocations as of the last GC
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	e, err := policy.New(ctx, cfg, p)
	if err != nil {
		return err
	}
	t2 := time.Now()
	cpu := procCPU(os.Getpid())
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		runtime.GC() // the profile shows allocations as of the last GC
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	p = nil // as a server does once the engine serves it
	_ = p

	lat := make([]float64, 0, *n)
	for i := range *n + *n/10 {
		start := time.Now()
		d, err := e.Eval(ctx, input)
		el := time.Since(start)
		if err != nil || !d.Allow {
			return fmt.Errorf("decision %+v %v: the reference request must be allowed", d, err)
		}
		if i >= *n/10 { // the first tenth warms up
			lat = append(lat, float64(el.Nanoseconds()))
		}
	}
	rss, hwm := procMemory(os.Getpid())
	// The live heap, measured after the resident memory so as not to
	// change it: a GC here returns nothing to the OS by itself.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(e)
	return json.NewEncoder(os.Stdout).Encode(engineResult{ReadRSSBytes: readRSS, HeapBytes: ms.HeapAlloc, NewAlloc: after.TotalAlloc - before.TotalAlloc, CPUSeconds: cpu,
		ReadSeconds: t1.Sub(t0).Seconds(), CompileSeconds: t2.Sub(t1).Seconds(),
		RSSBytes: rss, HWMBytes: hwm, P50Nanos: quantile(lat, 0.5), P99Nanos: quantile(lat, 0.99),
	})
}

// procMemory reads VmRSS and VmHWM of a process from /proc, in bytes.
func procMemory(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v * 1024
		case "VmHWM:":
			hwm = v * 1024
		}
	}
	return rss, hwm
}

// procCPU reads the user and system CPU time of a process from
// /proc/PID/stat, in seconds (clock ticks of 1/100 s on Linux).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return -1
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q * float64(len(s)))
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
