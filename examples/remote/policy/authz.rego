# A policy written for fastapi-opa, unchanged: the caller's claims at the top
# level of the input, request_method, and request_path as a list of segments.
# The same file is loaded by the OPA server and embedded in the example.
package httpapi.authz

default allow := false

# Finance staff may read the finance reports.
allow if {
	input.request_method == "GET"
	input.request_path[0] == "finance"
	"finance" in input.groups
}

# Everyone signed in may read the public page.
allow if {
	input.request_method == "GET"
	input.request_path == ["public"]
}
