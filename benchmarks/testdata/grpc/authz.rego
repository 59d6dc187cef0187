package grpcapi.authz

default allow := false

allow if {
	input.method == "/bench.Docs/Get"
	"reader" in input.user.claims.roles
	input.metadata["x-tenant"] == input.user.claims.tenant
}

reason := "readers of their own tenant only" if not allow
