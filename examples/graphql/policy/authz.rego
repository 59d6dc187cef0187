# A fastapi-opa GraphQL policy: the caller's claims at the top level, and
# input.gql_info with one entry per operation in the request, as fastapi-opa's
# GraphQLInjectable gives it:
#
#	{"name": "Employees", "operation": "query",
#	 "variables": {"dept": "String"},
#	 "selection_set": [["employees", ["name", "salary"]]]}
package httpapi.authz

default allow := false

# Every operation must be allowed on its own.
allow if {
	input.request_method == "POST"
	input.request_path == ["graphql"]
	count(input.gql_info) > 0
	every op in input.gql_info {
		operation_allowed(op)
	}
}

# Anyone signed in may query, except for salaries, which only HR may read.
operation_allowed(op) if {
	op.operation == "query"
	not reads_salary(op)
}

operation_allowed(op) if {
	op.operation == "query"
	"hr" in input.groups
}

# Only admins may change anything.
operation_allowed(op) if {
	op.operation == "mutation"
	"admin" in input.groups
}

# A selection is [field, [sub-selections...]]; salary may be nested anywhere.
reads_salary(op) if {
	some sel in op.selection_set
	walk(sel, [_, "salary"])
}
