# A policy written for the Python fastapi-opa middleware: claims at the top
# level, request_method, request_path as a list of segments.
package httpapi.authz

default allow := false

allow if {
	input.request_method == "GET"
	input.request_path[0] == "finance"
	"finance" in input.groups
}

allow if {
	input.request_method == "GET"
	input.request_path == ["public"]
}

allow if {
	input.request_method == "POST"
	input.request_path == ["graphql"]
	some op in input.gql_info
	op.operation == "query"
}
