# The demo policy that `regoguard` serves when it is given no policy of its
# own. It reads the regoguard input layout (see the README).
package httpapi.authz

default allow := false

# Anyone may read the public part of the API.
allow if {
	input.method == "GET"
	input.path_segments[0] == "public"
}

# Authenticated callers may read everything under /api.
allow if {
	input.user.authenticated
	input.method == "GET"
	input.path_segments[0] == "api"
}

# Admins may do anything.
allow if "admin" in input.user.claims.groups

reason := "sign in to read /api" if {
	not input.user.authenticated
	input.path_segments[0] == "api"
}

reason := "only admins may change things" if {
	input.user.authenticated
	input.method != "GET"
	not allow
}
