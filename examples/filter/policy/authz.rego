package httpapi.authz

# Any signed-in caller may list documents; which documents they see is
# data.filters.include's business, compiled into the list query.

default allow := false

allow if {
	input.method == "GET"
	input.path == "/docs"
	input.user.authenticated
}
