# The forward-auth workload: a verified bearer token whose groups hold
# staff may read.
package httpapi.authz

default allow := false

allow if {
	input.method == "GET"
	"staff" in input.user.claims.groups
}
