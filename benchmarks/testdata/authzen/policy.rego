# The AuthZEN workload: owners and editors may act on a document.
package authzen

default decision := false

decision if input.resource.properties.owner == input.subject.id

decision if {
	input.action.name in {"read", "update"}
	"editor" in input.subject.properties.roles
}
