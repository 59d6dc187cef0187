package httpapi.authz

# Who may ask serve's Compile API for filters (--compile-api authenticated):
# callers in the group "lister", for the rules under filters only.

default allow := false

allow if {
	input.method == "POST"
	input.path_segments[0] == "v1"
	input.path_segments[1] == "compile"
	input.path_segments[2] == "filters"
	"lister" in input.user.claims.groups
}
