package filters

# The rows of input.docs (the documents table) a caller may see. The caller
# is known (input.user); the row is left unknown and translated into the
# list query's WHERE clause.

# Public documents, unless archived.
include if {
	input.docs.public
	not input.docs.archived
}

# Your own documents, archived or not.
include if input.docs.owner == input.user.sub

# Your department's, below your clearance.
include if {
	input.docs.dept in input.user.claims.depts
	input.docs.level <= input.user.claims.clearance
}

# Auditors see everything.
include if "auditor" in input.user.claims.roles
