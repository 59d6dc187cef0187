package main

import (
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/cover"
)

// OPA gives one range per expression: two expressions on one line must not
// list the line twice (the report once read "lines 21, 21, 23").
func TestLineRangesListEachLineOnce(t *testing.T) {
	rng := func(a, b int) cover.Range {
		return cover.Range{Start: cover.Position{Row: a}, End: cover.Position{Row: b}}
	}
	for _, tc := range []struct {
		in   []cover.Range
		want []string
	}{
		{[]cover.Range{rng(21, 21), rng(21, 21), rng(23, 23)}, []string{"21", "23"}},
		{[]cover.Range{rng(9, 9), rng(7, 8), rng(8, 8)}, []string{"7-9"}},
		{[]cover.Range{rng(3, 5), rng(12, 12), rng(4, 6)}, []string{"3-6", "12"}},
		{nil, nil},
	} {
		if got := lineRanges(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("lineRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
