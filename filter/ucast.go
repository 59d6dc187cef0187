package filter

// UCASTForm is a variant of UCAST, as in OPA's media types: what its
// consumers can interpret.
type UCASTForm string

// The UCAST forms of OPA's Compile API.
const (
	// UCASTAll has every operator: comparisons, in, startswith, endswith,
	// contains, not, and comparisons of two fields.
	UCASTAll UCASTForm = "all"
	// UCASTMinimal has comparisons (eq, ne, lt, lte, gt, gte), and, or.
	UCASTMinimal UCASTForm = "minimal"
	// UCASTPrisma is for Prisma: UCASTAll without comparisons of two fields.
	UCASTPrisma UCASTForm = "prisma"
)

// UCAST renders the filter as a UCAST tree of JSON values
// ({"type":"field","operator":"eq","field":"docs.owner","value":"alice"}),
// with mappings applied as in [SQLOptions.Mappings]. A filter that selects
// every row is an empty object; one that selects none is nil. A condition
// form cannot express is an *Error.
func (f *Filter) UCAST(form UCASTForm, mappings map[string]any) (map[string]any, error) {
	return nil, errTODO
}
