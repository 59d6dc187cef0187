package httpapi.authz

default allow := false

allow if {
	input.method == "GET"
	input.path_segments[0] == "public"
}

allow if {
	input.user.authenticated
	input.method in {"GET", "POST"}
	input.path_segments[0] == "api"
}

allow if "admin" in input.user.claims.groups

status := 404 if {
	not allow
	input.path_segments[0] == "hidden"
}

reason := "admins only" if {
	not allow
	input.user.authenticated
}

headers["X-Policy"] := "regoguard-test"

# The tests read back what the policy saw.
seen := input
