# The fastapi-opa getting-started policy, in the fastapi-opa input layout: the
# verified ID token's claims at the top level, request_method and
# request_path. fastapi-opa's guide maps a Keycloak attribute to a "user"
# claim; this example keys on the standard "sub" claim instead, which every
# provider sends.
package httpapi.authz

# id2 is id1's manager.
subordinates := {"id1": [], "id2": ["id1"]}

default allow := false

# Users may read their own salary.
allow if {
	some username
	input.request_method == "GET"
	input.request_path = ["finance", "salary", username]
	input.sub == username
}

# Managers may read their subordinates' salaries.
allow if {
	some username
	input.request_method == "GET"
	input.request_path = ["finance", "salary", username]
	username in subordinates[input.sub]
}

reason := "only the employee and their manager may see a salary" if not allow
