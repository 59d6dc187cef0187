package filterdiff

import (
	"strings"
	"testing"
)

// TestCorpus checks the corpus itself: large enough, deterministic,
// covering every construct of the support list and every edge value, and
// not trivial (most cases select some rows and leave others).
func TestCorpus(t *testing.T) {
	cases, expect := corpus(t)
	if len(cases) < 1000 {
		t.Fatalf("%d cases, want at least 1 000", len(cases))
	}
	again := Generate(uint64(envInt("FILTERDIFF_SEED", defaultSeed)), 1, 20)
	for i, c := range again {
		if c.Module != cases[i].Module || lit(c.Input) != lit(cases[i].Input) || len(c.Rows) != len(cases[i].Rows) {
			t.Fatalf("%s: the generator is not deterministic", c.Name)
		}
	}
	features := map[string]int{}
	supported, mixed := 0, 0
	for _, c := range cases {
		for _, f := range c.Features {
			features[f]++
		}
		if c.Supported {
			supported++
		}
		want := expect[c.ID]
		if len(want) > 0 && len(want) < len(c.Rows) {
			mixed++
		}
	}
	for _, f := range []string{FeatEq, FeatNeq, FeatLt, FeatLte, FeatGt, FeatGte, FeatIn, FeatNotIn, FeatStarts,
		FeatEnds, FeatContains, FeatBare, FeatNotExpr, FeatHelper, FeatNotRule, FeatFunc, FeatSomeIn, FeatData,
		FeatOr, FeatKnown, FeatDefault, FeatLocal, FeatTypeMix, FeatExtra} {
		if features[f] < 20 {
			t.Errorf("feature %s in %d cases, want at least 20", f, features[f])
		}
	}
	if supported < len(cases)*3/4 {
		t.Errorf("%d of %d cases in the support list, want at least 3/4", supported, len(cases))
	}
	if mixed < len(cases)/3 {
		t.Errorf("%d of %d cases select some rows and leave others, want at least 1/3", mixed, len(cases))
	}
	// Edge values reach the rows: absent fields, LIKE's metacharacters,
	// mixed case, Unicode, numeric strings, booleans, empty strings.
	seen := map[string]bool{}
	for _, c := range cases {
		for _, r := range c.Rows {
			for _, f := range Fields {
				v, ok := r.Doc[f.Name]
				if !ok {
					seen["absent"] = true
					continue
				}
				switch v := v.(type) {
				case bool:
					seen["bool"] = true
				case string:
					for _, probe := range []string{"%", "_", `\`, "'", "ñ", "Ñ", "日", "🙂", "ALICE", "03", "2.5"} {
						if strings.Contains(v, probe) {
							seen[probe] = true
						}
					}
					if v == "" {
						seen["empty"] = true
					}
				}
			}
		}
	}
	for _, k := range []string{"absent", "bool", "%", "_", `\`, "'", "ñ", "Ñ", "日", "🙂", "ALICE", "03", "2.5", "empty"} {
		if !seen[k] {
			t.Errorf("no row holds %q", k)
		}
	}
	t.Logf("%d cases (%d in the support list), %d select some rows and leave others; features %v",
		len(cases), supported, mixed, features)
}
