# The decision is data-driven: data.roles.grants (bundle/roles/data.json)
# says which role may use which method under which first path segment.
package httpapi.authz

default allow := false

allow if {
	some role in input.user.claims.roles
	some grant in data.roles.grants[role]
	grant.method == input.method
	grant.prefix == input.path_segments[0]
}

reason := "no grant for this role" if not allow
