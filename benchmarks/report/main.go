// Command report turns the output of the benchmarks (go test -bench, several
// counts) into a table of medians and ratios, side by side per policy, and an
// SVG chart of latency per mode.
//
//	cd benchmarks && go run ./report -chart latency.svg < bench.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// A result line: BenchmarkRequest/policy=rbac/mode=remote-2  2000  325189 ns/op ...
var line = regexp.MustCompile(`^Benchmark(\w+)/policy=(\w+)/mode=([\w-]+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op\s+([\d.]+) allocs/op)?`)

type key struct{ bench, policy, mode string }

type samples struct{ ns, allocs []float64 }

func main() {
	chart := flag.String("chart", "", "write an SVG latency chart to this file")
	flag.Parse()
	results, order, err := parse(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	if len(results) == 0 {
		log.Fatal("report: no benchmark results on standard input")
	}
	printTables(os.Stdout, results, order)
	if *chart != "" {
		if err := os.WriteFile(*chart, []byte(svg(results, order)), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func parse(r io.Reader) (map[key]*samples, []key, error) {
	results := map[key]*samples{}
	var order []key
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		k := key{m[1], m[2], m[3]}
		s, ok := results[k]
		if !ok {
			s = &samples{}
			results[k] = s
			order = append(order, k)
		}
		ns, _ := strconv.ParseFloat(m[4], 64)
		s.ns = append(s.ns, ns)
		if m[6] != "" {
			a, _ := strconv.ParseFloat(m[6], 64)
			s.allocs = append(s.allocs, a)
		}
	}
	return results, order, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// baselines: the mode every other mode of a benchmark is divided by.
var baselines = map[string]string{"Decision": "raw", "Request": "none", "RequestParallel": "none", "Cache": "engine"}

func printTables(w io.Writer, results map[key]*samples, order []key) {
	for _, bench := range unique(order, func(k key) string { return k.bench }) {
		base := baselines[bench]
		modes := unique(filter(order, bench), func(k key) string { return k.mode })
		fmt.Fprintf(w, "\n%s (median ns/op; ratio to %s; allocs/op)\n\n", bench, base)
		fmt.Fprintf(w, "| policy | %s |", strings.Join(modes, " | "))
		if slices.Contains(modes, "remote") && slices.Contains(modes, inProcessMode(bench)) {
			fmt.Fprint(w, " remote ÷ in-process |")
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(modes)+boolInt(slices.Contains(modes, "remote"))))
		for _, policy := range unique(filter(order, bench), func(k key) string { return k.policy }) {
			fmt.Fprintf(w, "| %s |", policy)
			b := results[key{bench, policy, base}]
			for _, mode := range modes {
				s := results[key{bench, policy, mode}]
				if s == nil {
					fmt.Fprint(w, " - |")
					continue
				}
				ns := median(s.ns)
				cell := formatNs(ns)
				if b != nil && mode != base {
					cell += fmt.Sprintf(" (%.2f×)", ns/median(b.ns))
				}
				if len(s.allocs) > 0 {
					cell += fmt.Sprintf(", %.0f allocs", median(s.allocs))
				}
				fmt.Fprintf(w, " %s |", cell)
			}
			remote, local := results[key{bench, policy, "remote"}], results[key{bench, policy, inProcessMode(bench)}]
			if remote != nil && local != nil {
				fmt.Fprintf(w, " %.1f× |", median(remote.ns)/median(local.ns))
			}
			fmt.Fprintln(w)
		}
	}
}

func inProcessMode(bench string) string {
	if bench == "Decision" {
		return "engine"
	}
	return "in-process"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func formatNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func filter(order []key, bench string) []key {
	var out []key
	for _, k := range order {
		if k.bench == bench {
			out = append(out, k)
		}
	}
	return out
}

func unique(order []key, f func(key) string) []string {
	var out []string
	for _, k := range order {
		if v := f(k); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// svg draws BenchmarkRequest: one group of bars per policy, one bar per
// mode, on a logarithmic latency axis.
func svg(results map[key]*samples, order []key) string {
	const bench = "Request"
	rows := filter(order, bench)
	if len(rows) == 0 {
		rows = filter(order, "Decision")
	}
	if len(rows) == 0 {
		return ""
	}
	b := rows[0].bench
	policies := unique(rows, func(k key) string { return k.policy })
	modes := unique(rows, func(k key) string { return k.mode })
	colors := []string{"#9aa5b1", "#2f80ed", "#eb5757", "#27ae60"}
	const width, barH, gap, left, top = 760.0, 16.0, 14.0, 110.0, 40.0
	height := top + float64(len(policies))*(float64(len(modes))*barH+gap) + 50
	lo, hi := math.Inf(1), 0.0
	for _, k := range rows {
		m := median(results[k].ns)
		lo, hi = math.Min(lo, m), math.Max(hi, m)
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	scale := func(ns float64) float64 {
		return (math.Log10(ns) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo)) * (width - left - 120)
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="14" font-weight="bold">Benchmark%s: latency per request (median, log scale)</text>`+"\n", left, b)
	y := top
	for _, p := range policies {
		fmt.Fprintf(&s, `<text x="8" y="%.0f">%s</text>`+"\n", y+float64(len(modes))*barH/2+4, p)
		for i, m := range modes {
			r := results[key{b, p, m}]
			if r == nil {
				continue
			}
			ns := median(r.ns)
			fmt.Fprintf(&s, `<rect x="%.0f" y="%.0f" width="%.1f" height="%.0f" fill="%s"/>`, left, y, math.Max(1, scale(ns)), barH-2, colors[i%len(colors)])
			fmt.Fprintf(&s, `<text x="%.1f" y="%.0f">%s %s</text>`+"\n", left+math.Max(1, scale(ns))+4, y+barH-5, m, formatNs(ns))
			y += barH
		}
		y += gap
	}
	for t := lo; t <= hi; t *= 10 {
		x := left + scale(t)
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ccc"/><text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n", x, top-6, x, y, x, y+16, formatNs(t))
	}
	s.WriteString("</svg>\n")
	return s.String()
}
