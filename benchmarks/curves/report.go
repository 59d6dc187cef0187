package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func dur(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
}

func printTables(w io.Writer, r Results) {
	fmt.Fprintf(w, "Machine: %s. Run %s, load average %s before, %s after.\n", r.Machine, r.Started, r.LoadBefore, r.LoadAfter)
	var rules, data, serve []point
	for _, p := range r.Points {
		switch p.Curve {
		case "data":
			data = append(data, p)
		case "serve":
			serve = append(serve, p)
		default:
			rules = append(rules, p)
		}
	}
	if len(rules) > 0 {
		fmt.Fprintln(w, "\n**Policy size** (rules: indexed by the first path segment; scan: contains, which the index cannot use; engine: LoadFiles + policy.New; OPA: exec until /health is 200)")
		fmt.Fprintln(w, "\n| curve | rules | Rego | engine ready (read + compile) | OPA ready | CPU to ready: engine / OPA | engine RSS | OPA RSS | engine p50 (in-process) | OPA p50 (loopback HTTP) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		for _, p := range rules {
			fmt.Fprintf(w, "| %s | %d | %.0f KB | %.2f s (%.2f + %.2f) | %.2f s | %.2f / %.2f s | %s | %s | %s | %s |\n", p.Curve, p.Size, float64(p.Bytes)/1024,
				p.Engine.ReadSeconds+p.Engine.CompileSeconds, p.Engine.ReadSeconds, p.Engine.CompileSeconds, p.OPA.ReadySeconds, p.Engine.CPUSeconds, p.OPA.CPUSeconds,
				mb(p.Engine.RSSBytes), mb(p.OPA.RSSBytes), dur(p.Engine.P50Nanos), dur(p.OPA.P50Nanos))
		}
	}
	if len(data) > 0 {
		fmt.Fprintln(w, "\n**Data size** (documents looked up by id; store: engine Config.Store, OPA with `--optimize-store-for-read-speed` for read)")
		fmt.Fprintln(w, "\n| documents | JSON | store | engine ready (read + compile) | OPA ready | CPU to ready: engine / OPA | engine RSS (peak) | OPA RSS (peak) | RSS engine ÷ OPA | engine p50 | OPA p50 |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, p := range data {
			fmt.Fprintf(w, "| %d | %.1f MB | %s | %.2f s (%.2f + %.2f) | %.2f s | %.2f / %.2f s | %s (%s) | %s (%s) | %.2f | %s | %s |\n", p.Size, float64(p.Bytes)/(1<<20), p.Store,
				p.Engine.ReadSeconds+p.Engine.CompileSeconds, p.Engine.ReadSeconds, p.Engine.CompileSeconds, p.OPA.ReadySeconds, p.Engine.CPUSeconds, p.OPA.CPUSeconds,
				mb(p.Engine.RSSBytes), mb(p.Engine.HWMBytes), mb(p.OPA.RSSBytes), mb(p.OPA.HWMBytes),
				float64(p.Engine.RSSBytes)/float64(p.OPA.RSSBytes), dur(p.Engine.P50Nanos), dur(p.OPA.P50Nanos))
		}
	}
	if len(serve) > 0 {
		fmt.Fprintln(w, "\n**serve with its defaults against opa run with its defaults** (same directory; ready: exec until /readyz, /health is 200; p50: GET /documents/ID through the proxy with an API key, against POST /v1/data/httpapi/authz/allow; both loopback HTTP, sequential)")
		fmt.Fprintln(w, "\n| documents | JSON | serve ready | OPA ready | CPU to ready: serve / OPA | serve RSS (peak) | OPA RSS (peak) | RSS serve ÷ OPA | serve p50 / p99 | OPA p50 / p99 | decisions checked |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, p := range serve {
			s := p.Serve
			if s == nil {
				continue
			}
			fmt.Fprintf(w, "| %d | %.1f MB | %.2f s | %.2f s | %.2f / %.2f s | %s (%s) | %s (%s) | %.2f | %s / %s | %s / %s | %d |\n", p.Size, float64(p.Bytes)/(1<<20),
				s.ReadySeconds, p.OPA.ReadySeconds, s.CPUSeconds, p.OPA.CPUSeconds, mb(s.RSSBytes), mb(s.HWMBytes), mb(p.OPA.RSSBytes), mb(p.OPA.HWMBytes),
				float64(s.RSSBytes)/float64(p.OPA.RSSBytes), dur(s.P50Nanos), dur(s.P99Nanos), dur(p.OPA.P50Nanos), dur(p.OPA.P99Nanos), s.Correct)
		}
	}
	if len(r.Activation) > 0 {
		fmt.Fprintln(w, "\n**Activation under load** (paced requests from 2 goroutines; a second revision of the same size read and activated)")
		fmt.Fprintln(w, "\n| system | store | documents | rate | activation | steady p50 / p99 | during p50 / p99 | p99 during ÷ steady | max during | slowest request in flight at the swap | errors |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
		for _, a := range r.Activation {
			fmt.Fprintf(w, "| %s | %s | %d | %d/s | %.2f s | %s / %s (%d) | %s / %s (%d) | %.2f | %s | %s (%d) | %d |\n", a.System, a.Store, a.Entries, a.Rate,
				a.ActivationSeconds, dur(a.SteadyP50), dur(a.SteadyP99), a.SteadyN, dur(a.DuringP50), dur(a.DuringP99), a.DuringN,
				a.DuringP99/a.SteadyP99, dur(a.DuringMax), dur(a.SwapMax), a.SwapN, a.Errors)
		}
	}
}

// series is one line of a panel.
type series struct {
	name   string
	color  string
	dashed bool
	xs, ys []float64
}

var (
	colEngine = "#1f77b4"
	colOPA    = "#d62728"
	colFlat   = "#2ca02c"
)

// drawSVG draws five log-log panels (policy size: ready time, p50; data
// size: ready time, resident memory, p50) and the activation p99s.
func drawSVG(r Results) string {
	const pw, ph, cols = 330, 230, 3
	var panels []string
	pick := func(curve, store string, f func(point) (float64, float64)) (eng, opa series) {
		dash := store == "read" || curve == "scan"
		suffix := ""
		switch curve {
		case "data":
			suffix = " (" + store + ")"
		case "scan":
			suffix = " (scan)"
		}
		eng = series{name: "engine" + suffix, color: colEngine, dashed: dash}
		opa = series{name: "OPA server" + suffix, color: colOPA, dashed: dash}
		for _, p := range r.Points {
			if p.Curve != curve || (curve == "data" && p.Store != store) {
				continue
			}
			e, o := f(p)
			eng.xs, eng.ys = append(eng.xs, float64(p.Size)), append(eng.ys, e)
			opa.xs, opa.ys = append(opa.xs, float64(p.Size)), append(opa.ys, o)
		}
		return eng, opa
	}
	// CPU time to be ready: on a shared machine wall time mostly measures
	// the other tenants.
	ready := func(p point) (float64, float64) { return p.Engine.CPUSeconds, p.OPA.CPUSeconds }
	rss := func(p point) (float64, float64) {
		return float64(p.Engine.RSSBytes) / (1 << 20), float64(p.OPA.RSSBytes) / (1 << 20)
	}
	p50 := func(p point) (float64, float64) { return p.Engine.P50Nanos / 1e3, p.OPA.P50Nanos / 1e3 }
	both := func(curve string, f func(point) (float64, float64)) []series {
		if curve == "rules" {
			e, o := pick("rules", "", f)
			out := []series{e, o}
			if e, o := pick("scan", "", f); len(e.xs) > 0 {
				out = append(out, e, o)
			}
			return out
		}
		var out []series
		for _, st := range []string{"flat", "compact", "read"} {
			e, o := pick(curve, st, f)
			switch {
			case len(e.xs) == 0:
			case st == "flat":
				// Against OPA's default store, drawn with compact's line.
				e.color = colFlat
				out = append(out, e)
			default:
				out = append(out, e, o)
			}
		}
		return out
	}
	panels = append(panels,
		panel("policy size → CPU time to ready (s)", "rules", both("rules", ready), pw, ph),
		panel("policy size → decision p50 (µs)", "rules", both("rules", p50), pw, ph),
		activationPanel(r.Activation, pw, ph),
		panel("data size → CPU time to ready (s)", "documents", both("data", ready), pw, ph),
		panel("data size → resident memory (MB)", "documents", both("data", rss), pw, ph),
		panel("data size → decision p50 (µs)", "documents", both("data", p50), pw, ph),
	)
	rows := (len(panels) + cols - 1) / cols
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", cols*pw, rows*ph+40)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="8" y="16" font-size="13" font-weight="bold">regoguard engine (blue; green: flat store, the default) vs OPA server (red); dashed: read-optimised store, or rules the index cannot select</text>`+"\n")
	fmt.Fprintf(&b, `<text x="8" y="32" fill="#555">%s; load average %s → %s. Log-log. p50: engine in-process, OPA over loopback HTTP.</text>`+"\n", esc(r.Machine), r.LoadBefore, r.LoadAfter)
	for i, p := range panels {
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)">%s</g>`+"\n", (i%cols)*pw, 40+(i/cols)*ph, p)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func logRange(vals []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return 1, 10
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if lo == hi {
		hi = lo * 10
	}
	return lo, hi
}

func panel(title, xlabel string, ss []series, pw, ph int) string {
	const ml, mr, mt, mb = 48, 10, 20, 58
	w, h := float64(pw-ml-mr), float64(ph-mt-mb)
	var xs, ys []float64
	for _, s := range ss {
		xs, ys = append(xs, s.xs...), append(ys, s.ys...)
	}
	x0, x1 := logRange(xs)
	y0, y1 := logRange(ys)
	px := func(x float64) float64 { return ml + w*math.Log10(x/x0)/math.Log10(x1/x0) }
	py := func(y float64) float64 { return mt + h - h*math.Log10(y/y0)/math.Log10(y1/y0) }
	var b strings.Builder
	fmt.Fprintf(&b, `<text x="%d" y="13" font-weight="bold">%s</text>`, ml, esc(title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, ml, mt, w, h)
	for x := x0; x <= x1*1.0001; x *= 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#eee"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`,
			px(x), mt, px(x), mt+h, px(x), mt+h+12, short(x))
	}
	for y := y0; y <= y1*1.0001; y *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			ml, py(y), ml+w, py(y), ml-3, py(y)+4, short(y))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`, ml+w/2, mt+h+24, xlabel)
	for i, s := range ss {
		var pts []string
		for j := range s.xs {
			if s.ys[j] > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.xs[j]), py(s.ys[j])))
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, strings.Join(pts, " "), s.color, dash)
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, x, y, s.color)
		}
		lx, ly := ml+(i%2)*int(w/2), int(mt+h)+36+(i/2)*12
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`,
			lx, ly-4, lx+14, ly-4, s.color, dash, lx+18, ly, esc(s.name))
	}
	return b.String()
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

// activationPanel draws steady and during-activation p99 as bars.
func activationPanel(as []activationResult, pw, ph int) string {
	const ml, mt, mb = 48, 20, 58
	w, h := float64(pw-ml-10), float64(ph-mt-mb)
	var b strings.Builder
	fmt.Fprintf(&b, `<text x="%d" y="13" font-weight="bold">activation under load → p99 (ms)</text>`, ml)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`, ml, mt, w, h)
	if len(as) == 0 {
		return b.String()
	}
	var vals []float64
	for _, a := range as {
		vals = append(vals, a.SteadyP99/1e6, a.DuringP99/1e6)
	}
	y0, y1 := logRange(vals)
	py := func(y float64) float64 { return mt + h - h*math.Log10(y/y0)/math.Log10(y1/y0) }
	for y := y0; y <= y1*1.0001; y *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			ml, py(y), ml+w, py(y), ml-3, py(y)+4, short(y))
	}
	slot := w / float64(len(as))
	for i, a := range as {
		col := colEngine
		switch {
		case a.System == "opa":
			col = colOPA
		case a.Store == "flat":
			col = colFlat
		}
		x := float64(ml) + slot*float64(i) + slot*0.15
		bw := slot * 0.33
		for k, v := range []float64{a.SteadyP99 / 1e6, a.DuringP99 / 1e6} {
			op := "0.45"
			if k == 1 {
				op = "1"
			}
			top := py(math.Max(v, y0))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="%s"/>`, x+float64(k)*bw, top, bw-1, mt+h-top, col, op)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`,
			x+bw, mt+h+12, a.System, x+bw, mt+h+24, a.Store)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.0f" fill="#555">pale: steady state; solid: during the activation</text>`, ml, mt+h+40)
	return b.String()
}
