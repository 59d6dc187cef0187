# A list endpoint's policy, the reference of BenchmarkFilter: which
# documents may the caller see? Written so that OPA's Compile API
# translates it on every dialect (no not, no bare booleans, no startswith),
# to hold both translators side by side on the same request.
package filters

# Owners see their own documents.
include if input.docs.owner == input.user.name

# Members see their departments' documents up to their clearance.
include if {
	input.docs.dept in input.user.groups
	input.docs.level <= data.org.clearance[input.user.name]
}

# Everyone sees public documents of the open departments.
include if {
	input.docs.public == true
	input.docs.dept in data.org.open_depts
}
