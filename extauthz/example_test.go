package extauthz_test

import (
	"fmt"

	"github.com/regoguard/regoguard/extauthz"
)

// The input of a request in opa-envoy-plugin's layout, and its decision.
func Example() {
	in, _ := extauthz.Input(&extauthz.Request{
		Method: "GET", Path: "/people?lang=en", Host: "app",
		Headers: map[string]string{"authorization": "Bearer t", "x-forwarded-user": "admin"},
	}, nil)
	fmt.Println(in)
	d, _ := extauthz.ParseResult(map[string]any{"allowed": false, "http_status": 401, "body": "sign in"})
	r, _ := extauthz.ReadResult(d)
	fmt.Println(d.Allow, r.DeniedStatus(), r.Body)
	// Output:
	// {"attributes": {"request": {"http": {"headers": {"authorization": "Bearer t"}, "host": "app", "method": "GET", "path": "/people?lang=en"}}}, "parsed_body": null, "parsed_path": ["people"], "parsed_query": {"lang": ["en"]}, "truncated_body": false, "version": {"encoding": "protojson", "ext_authz": "v3"}}
	// false 401 sign in
}
