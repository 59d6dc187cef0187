package httpapi.authz

default allow := false

# HTTP: readers read.
allow if {
	input.method == "GET"
	"reader" in input.user.claims.groups
}

# gRPC: readers call List of their own tenant.
allow if {
	input.method == "/shop.Orders/List"
	"reader" in input.user.claims.groups
	input.metadata["x-tenant"] == input.user.claims.tenant
}

allow if {
	input.method == "/shop.Orders/Cancel"
	input.message.owner == input.user.sub
}

reason := "not allowed" if not allow
