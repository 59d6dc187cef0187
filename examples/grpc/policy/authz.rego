package grpcapi.authz

default allow := false

# Readers list the orders of their own tenant (x-tenant metadata).
allow if {
	input.method == "/shop.Orders/List"
	"reader" in input.user.claims.roles
	input.metadata["x-tenant"] == input.user.claims.tenant
}

# Anyone signed in watches their own tenant's orders (a stream, judged
# before its first message, so on metadata and identity only).
allow if {
	input.method == "/shop.Orders/Watch"
	input.metadata["x-tenant"] == input.user.claims.tenant
}

# Clerks cancel orders of their own tenant, read from the request message.
allow if {
	input.method == "/shop.Orders/Cancel"
	"clerk" in input.user.claims.roles
	input.message.tenant == input.user.claims.tenant
}

reason := "only your own tenant's orders" if not allow
