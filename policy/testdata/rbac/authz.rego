package httpapi.authz

# Roles and their grants live in data.roles (roles/data.json).

default allow := false

allow if {
	some role in input.user.roles
	some grant in data.roles[role]
	grant.method == input.method
	startswith(input.path, grant.prefix)
}

reason := "not in a role that grants this" if not allow

status := 404 if {
	not allow
	startswith(input.path, "/secret")
}

headers["X-Policy"] := "rbac"
