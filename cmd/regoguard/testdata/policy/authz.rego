package httpapi.authz

default allow := false

allow if {
	input.method == "GET"
	input.path_segments[0] == "docs"
	"reader" in input.user.claims.groups
}

allow if {
	input.method == "POST"
	input.path_segments[0] == "docs"
	"writer" in input.user.claims.groups
	input.body.title != ""
}

reason := "writers only" if {
	input.method == "POST"
	not allow
}
