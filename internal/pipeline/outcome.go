package pipeline

import (
	"strconv"
	"time"
)

// Metrics receives what a front end observes, to count it. Package authz
// publishes it as authz.Metrics (an alias): its documentation is there.
type Metrics interface {
	Request(Outcome)
	Decision(Outcome, time.Duration)
	Fallback()
	WouldRefuse()
}

// Outcome is what became of a request or call. Package authz publishes it
// as authz.Outcome, with its constants.
type Outcome uint8

// The outcomes, in the order of their String names.
const (
	OutcomeAllow Outcome = iota
	OutcomeDeny
	OutcomeError
	OutcomeCanceled
	OutcomeUnauthenticated
	OutcomeSkipped
	OutcomeInvalid
)

var outcomeNames = [...]string{"allow", "deny", "error", "canceled", "unauthenticated", "skipped", "invalid"}

// String returns the outcome's name: allow, deny, error, canceled,
// unauthenticated, skipped or invalid.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Outcomes returns every outcome, in order.
func Outcomes() []Outcome {
	all := make([]Outcome, len(outcomeNames))
	for i := range all {
		all[i] = Outcome(i)
	}
	return all
}
