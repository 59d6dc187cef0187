package policy_test

import (
	"encoding/json"
	"fmt"
	"log"

	"github.com/regoguard/regoguard/policy"
)

// A decision document as a remote OPA server or a decision log holds it,
// turned into the Decision the engine would give.
func ExampleParseResult() {
	var doc any
	if err := json.Unmarshal([]byte(`{"allow": false, "reason": "owners only", "status": 404}`), &doc); err != nil {
		log.Fatal(err)
	}
	d, err := policy.ParseResult(doc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow, d.Status, d.Reason)

	// An undefined decision (nil) is a deny; a shape that says neither
	// allow nor deny is an error.
	d, _ = policy.ParseResult(nil)
	fmt.Println(d.Allow, d.Defined)
	_, err = policy.ParseResult("yes")
	fmt.Println(err != nil)
	// Output:
	// false 404 owners only
	// false false
	// true
}

// Every spelling of a decision path names the same document.
func ExampleDecisionRef() {
	for _, path := range []string{"", "httpapi/authz", "httpapi.authz", "data.httpapi.authz.allow"} {
		ref, err := policy.DecisionRef(path)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q → %v\n", path, ref)
	}
	// Output:
	// "" → data.httpapi.authz
	// "httpapi/authz" → data.httpapi.authz
	// "httpapi.authz" → data.httpapi.authz
	// "data.httpapi.authz.allow" → data.httpapi.authz.allow
}
