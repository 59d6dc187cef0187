package authz_test

import (
	"context"
	"testing"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// A Fallback of two engines builds what either revision reads, and follows
// a reload of either: the union it keeps between requests is made again
// when a revision changes.
func TestFallbackFieldsFollowReloads(t *testing.T) {
	primary := policyOf(t, "package httpapi.authz\nallow if input.method == \"GET\"\n")
	secondary := policyOf(t, "package httpapi.authz\nallow if input.path == \"/\"\n")
	fb := &authz.Fallback{Primary: primary, Secondary: secondary}
	reads := func(want map[string]bool) {
		t.Helper()
		for range 2 { // the second time from what the Fallback kept
			s, err := fb.Plan()
			if err != nil {
				t.Fatal(err)
			}
			for field, w := range want {
				if got := s.Fields.Reads(field); got != w {
					t.Errorf("Fields().Reads(%q) = %v, want %v", field, got, w)
				}
			}
		}
	}
	reads(map[string]bool{"method": true, "path": true, "host": false})

	reload := policy.MustParse(map[string]string{"p.rego": "package httpapi.authz\nallow if input.host == \"a\"\n"}, nil)
	if err := primary.Load(context.Background(), reload); err != nil {
		t.Fatal(err)
	}
	reads(map[string]bool{"method": false, "path": true, "host": true})

	if err := secondary.Load(context.Background(), reload); err != nil {
		t.Fatal(err)
	}
	reads(map[string]bool{"method": false, "path": false, "host": true})
}
