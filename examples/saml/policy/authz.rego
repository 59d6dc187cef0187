# The SAML assertion's attributes are the user's claims: one list of values
# per attribute, under its Name and its FriendlyName.
package httpapi.authz

default allow := false

# Finance staff may read the finance reports.
allow if {
	input.method == "GET"
	input.path_segments[0] == "finance"
	"finance" in input.user.claims.eduPersonAffiliation
}

reason := "finance staff only" if not allow
