package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/regoguard/regoguard/policy"
)

// activationResult compares request latency while a new revision is being
// read, compiled and swapped in with latency before it (steady state).
type activationResult struct {
	System            string  `json:"system"`
	Store             string  `json:"store"`
	Entries           int     `json:"entries"`
	Rate              int     `json:"rate"` // requests per second, all workers
	ActivationSeconds float64 `json:"activation_s"`
	SteadyN           int     `json:"steady_n"`
	SteadyP50         float64 `json:"steady_p50_ns"`
	SteadyP99         float64 `json:"steady_p99_ns"`
	SteadyMax         float64 `json:"steady_max_ns"`
	DuringN           int     `json:"during_n"`
	DuringP50         float64 `json:"during_p50_ns"`
	DuringP99         float64 `json:"during_p99_ns"`
	DuringMax         float64 `json:"during_max_ns"`
	// SwapMax is the slowest request in flight when the new revision
	// became visible (between the last answer of the old revision and the
	// first of the new one): a request that waited on the swap shows here.
	SwapMax float64 `json:"swap_max_ns"`
	SwapN   int     `json:"swap_n"`
	Errors  int     `json:"errors"`
}

type sample struct {
	start, end time.Time
	rev        int // 0: old revision, 1: new
}

// pace runs workers that each send one request every workers/rate seconds
// until stop reports true, and returns every sample. do reports which
// revision answered.
func pace(workers, rate int, stop func() bool, do func() (int, error)) ([]sample, int) {
	interval := time.Duration(int64(time.Second) * int64(workers) / int64(rate))
	var mu sync.Mutex
	var all []sample
	errs := 0
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range workers {
		wg.Go(func() {
			var mine []sample
			bad := 0
			next := begin.Add(interval * time.Duration(w) / time.Duration(workers))
			for !stop() {
				if wait := time.Until(next); wait > 0 {
					time.Sleep(wait)
				}
				next = next.Add(interval)
				s := time.Now()
				rev, err := do()
				mine = append(mine, sample{start: s, end: time.Now(), rev: rev})
				if err != nil {
					bad++
				}
			}
			mu.Lock()
			all = append(all, mine...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, errs
}

// summarise splits samples into steady state (started before the
// activation began) and during (started while it ran).
func summarise(r *activationResult, samples []sample, actStart, actEnd time.Time) {
	var steady, during, swap []float64
	lastOld, firstNew := time.Time{}, time.Time{}
	for _, s := range samples {
		if s.rev == 0 && s.end.After(lastOld) {
			lastOld = s.end
		}
		if s.rev == 1 && (firstNew.IsZero() || s.end.Before(firstNew)) {
			firstNew = s.end
		}
	}
	for _, s := range samples {
		ns := float64(s.end.Sub(s.start).Nanoseconds())
		switch {
		case s.start.Before(actStart):
			steady = append(steady, ns)
		case s.start.Before(actEnd):
			during = append(during, ns)
		}
		// In flight at some point between the last old answer and the first
		// new one: the window in which the swap happened.
		lo, hi := lastOld, firstNew
		if hi.Before(lo) {
			lo, hi = hi, lo
		}
		if !s.start.After(hi) && !s.end.Before(lo) {
			swap = append(swap, ns)
		}
	}
	r.ActivationSeconds = actEnd.Sub(actStart).Seconds()
	r.SteadyN, r.SteadyP50, r.SteadyP99, r.SteadyMax = len(steady), quantile(steady, 0.5), quantile(steady, 0.99), slices.Max(append(steady, 0))
	r.DuringN, r.DuringP50, r.DuringP99, r.DuringMax = len(during), quantile(during, 0.5), quantile(during, 0.99), slices.Max(append(during, 0))
	r.SwapN, r.SwapMax = len(swap), slices.Max(append(swap, 0))
}

// runEngineActivation is a child process: it serves revision A, sends
// paced decisions, and after warm-up reads and loads revision B with
// policy.LoadFiles and Engine.Load, as a bundle activation does.
func runEngineActivation(args []string) error {
	fs := flag.NewFlagSet("engine-activation", flag.ExitOnError)
	dirA := fs.String("a", "", "revision A directory")
	dirB := fs.String("b", "", "revision B directory")
	inputFile := fs.String("input", "", "JSON input file")
	store := fs.String("store", "flat", "flat, read or compact")
	workers := fs.Int("workers", 2, "concurrent requesters")
	rate := fs.Int("rate", 1000, "requests per second, all workers together")
	warm := fs.Duration("warm", 1500*time.Millisecond, "steady state before the activation")
	after := fs.Duration("after", 500*time.Millisecond, "load after the activation")
	_ = fs.Parse(args)
	st, err := storeOption(*store)
	if err != nil {
		return err
	}
	cfg := policy.Config{Store: st}
	raw, err := os.ReadFile(*inputFile)
	if err != nil {
		return err
	}
	input, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	ctx := context.Background()
	pa, err := policy.LoadFiles(*dirA)
	if err != nil {
		return err
	}
	e, err := policy.New(ctx, cfg, pa)
	if err != nil {
		return err
	}
	pa = nil
	_ = pa
	revA := e.Revision()

	act := &activation{}
	go act.run(*warm, func() error {
		p, err := policy.LoadFiles(*dirB)
		if err != nil {
			return err
		}
		return e.Load(ctx, p)
	})
	samples, errs := pace(*workers, *rate, act.stopAfter(*after), func() (int, error) {
		d, err := e.Eval(ctx, input)
		rev := 1
		if d.Revision == revA {
			rev = 0
		}
		if err == nil && !d.Allow {
			err = fmt.Errorf("denied")
		}
		return rev, err
	})
	if act.err != nil {
		return act.err
	}
	r := activationResult{System: "engine", Store: *store, Rate: *rate, Errors: errs}
	summarise(&r, samples, act.start, act.end)
	return json.NewEncoder(os.Stdout).Encode(r)
}

// activation runs one activation after a warm-up and tells the paced load
// when to stop: a while after the activation is done.
type activation struct {
	mu         sync.Mutex
	start, end time.Time
	err        error
}

func (a *activation) run(warm time.Duration, activate func() error) {
	time.Sleep(warm)
	a.mu.Lock()
	a.start = time.Now()
	a.mu.Unlock()
	err := activate()
	a.mu.Lock()
	a.end, a.err = time.Now(), err
	a.mu.Unlock()
}

func (a *activation) stopAfter(after time.Duration) func() bool {
	return func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.end.IsZero() && time.Since(a.end) > after
	}
}

// storeOption is the engine store named s (flat, read or compact).
func storeOption(s string) (policy.Store, error) {
	switch s {
	case "flat":
		return policy.StoreFlat, nil
	case "read":
		return policy.StoreReadOptimized, nil
	case "compact":
		return policy.StoreCompact, nil
	}
	return 0, fmt.Errorf("unknown store %q", s)
}

// opaActivation runs the same paced load against an OPA server serving
// revision A and, after warm-up, replaces its data with revision B's
// (PUT /v1/data: read, parsed and written into the store while requests run).
func opaActivation(url string, dirB string, input map[string]any, workers, rate int, warm, after time.Duration) (activationResult, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers + 2}, Timeout: 60 * time.Second}
	body, err := json.Marshal(map[string]any{"input": input})
	if err != nil {
		return activationResult{}, err
	}
	act := &activation{}
	go act.run(warm, func() error {
		f, err := os.Open(filepath.Join(dirB, "data.json"))
		if err != nil {
			return err
		}
		defer f.Close()
		req, err := http.NewRequest(http.MethodPut, url+"/v1/data", f)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("PUT /v1/data: %s", resp.Status)
		}
		return nil
	})
	// The whole decision package (allow and the document it read): OPA
	// reports no revision for PUT data, but the owner of the looked-up
	// document differs between A and B.
	do := func() (int, error) {
		resp, err := client.Post(url+"/v1/data/httpapi/authz", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out struct {
			Result struct {
				Allow    bool
				Document struct{ Owner string }
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, err
		}
		if !out.Result.Allow {
			return 0, fmt.Errorf("denied")
		}
		return ownerRev(out.Result.Document.Owner, input), nil
	}
	samples, errs := pace(workers, rate, act.stopAfter(after), do)
	if act.err != nil {
		return activationResult{}, act.err
	}
	r := activationResult{System: "opa", Rate: rate, Errors: errs}
	summarise(&r, samples, act.start, act.end)
	return r, nil
}

// ownerRev tells which revision produced owner for the input's document
// (genData gives document i the owner user(i+rev)%100).
func ownerRev(owner string, input map[string]any) int {
	id := input["path_segments"].([]any)[1].(string)
	var i, o int
	fmt.Sscanf(strings.TrimPrefix(id, "doc"), "%d", &i)
	fmt.Sscanf(strings.TrimPrefix(owner, "user"), "%d", &o)
	if o == i%100 {
		return 0
	}
	return 1
}
