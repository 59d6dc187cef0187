package filters

# Each rule is one shape of list policy; filter_test.go compiles each with
# regoguard filter and with OPA's Compile API and compares the answers.

owner if input.docs.owner == input.user

shared if {
	input.docs.level < 3
	input.docs.dept in {"hr", "it"}
}

shared if input.docs.owner == input.user

depts if input.docs.dept in input.depts

status if input.docs.status != "archived"

prefix if startswith(input.docs.title, input.prefix)

admin if input.user == "admin"

admin if input.docs.owner == input.user

tenant_of(doc) := doc.tenant

scoped if tenant_of(input.docs) == input.tenant

quoted if input.docs.title == input.title

lowered if lower(input.docs.owner) == input.user

visible if not input.docs.archived

nobody if input.user == "nobody"

public if input.docs.public

outside_hr if not input.docs.dept in {"hr"}

include if input.docs.owner == input.user

include if input.docs.public

include if {
	input.docs.level <= input.clearance
	not input.docs.archived
}

same_tenant(t) := t == input.tenant

tenant_only if same_tenant(input.docs.tenant)
