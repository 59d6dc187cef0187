package main

import (
	"slices"
	"testing"
)

// A filter that selects rows full evaluation refuses, or misses rows it
// selects, is a failure that names the rows and the direction.
func TestFilterMismatchNamesRowsAndDirection(t *testing.T) {
	got := filterMismatch("the filter", []string{"1", "2", "5"}, []string{"1", "3"})
	want := []string{
		"the filter selects rows 2,5 that full evaluation refuses (wider than the policy)",
		"the filter misses rows 3 that full evaluation selects",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := filterMismatch("the filter", []string{"1"}, []string{"1"}); got != nil {
		t.Errorf("equal sets: %q", got)
	}
	if got := expectMismatch(nil, []string{`"a"`}); !slices.Equal(got, []string{`the policy refuses rows "a", expected`}) {
		t.Errorf("expectMismatch: %q", got)
	}
}
