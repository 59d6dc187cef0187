package httpapi.authz

allow if {
	input.method == "GET"
	input.path = = "/"
}
