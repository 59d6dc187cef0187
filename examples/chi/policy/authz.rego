package httpapi.authz

default allow := false

# Everyone signed in may read.
allow if {
	input.user.authenticated
	input.method == "GET"
}

# Editors may also write their own notes.
allow if {
	input.method in {"POST", "PUT", "DELETE"}
	input.path_segments[0] == "notes"
	"editor" in input.user.claims.roles
}

reason := "editors only" if {
	input.method != "GET"
	not allow
}
