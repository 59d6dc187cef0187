# small: a few rules, the kind of policy most services start with.
package httpapi.authz

default allow := false

allow if {
	input.method == "GET"
	input.path_segments[0] == "public"
}

allow if {
	input.user.authenticated
	input.method == "GET"
}

allow if "admin" in input.user.claims.groups
