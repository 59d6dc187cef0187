package saml

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/crewjam/saml"
)

// Issue #22, class 7: a FriendlyName never overrides, or adds to, a claim
// that comes from an attribute's Name, nor iss, whatever the order of the
// attributes and statements. Each probe is one assertion; a claim that
// differs from what its Name (or the issuer) says is let through.
func TestSAMLFriendlyNameNeverShadowsAName(t *testing.T) {
	probes := [][]attr{}
	targets := []string{"groups", "iss", "email", "uid", "role"}
	for _, target := range targets {
		genuine := attr{target, "", "genuine-" + target}
		forged := attr{"urn:x:dept", target, "forged-admins"}
		probes = append(probes,
			[]attr{genuine, forged},
			[]attr{forged, genuine},
			[]attr{forged, forged, genuine},
			[]attr{{target, "other", "genuine-" + target}, forged},
			[]attr{forged, {target, target, "genuine-" + target}},
			[]attr{{"urn:x:a", target, "forged-a"}, {"urn:x:b", target, "forged-b"}, genuine},
		)
	}
	// Two Names sharing one FriendlyName: the alias is ambiguous, so it
	// is left out rather than merged (one Name could grant what the other
	// denies).
	ambiguous := []attr{{"urn:x:a", "role", "reader"}, {"urn:x:b", "role", "admin"}}
	through := []string{}
	for i, p := range probes {
		for _, split := range []bool{false, true} {
			a := assertion(split, p)
			{
				claims := samlClaims(a, false)
				want := map[string][]any{}
				for _, at := range p {
					want[at.name] = append(want[at.name], at.value)
				}
				for name, vals := range want {
					if name == "iss" { // the issuer's, checked below
						continue
					}
					if !reflect.DeepEqual(claims[name], vals) {
						through = append(through, fmt.Sprintf("probe %d (split %v): %s = %v, want %v", i, split, name, claims[name], vals))
					}
				}
				if claims["iss"] != "https://idp.example" {
					through = append(through, fmt.Sprintf("probe %d (split %v): iss = %v", i, split, claims["iss"]))
				}
			}
		}
	}
	for _, split := range []bool{false, true} {
		if v, ok := samlClaims(assertion(split, ambiguous), false)["role"]; ok {
			through = append(through, fmt.Sprintf("two Names sharing the FriendlyName role: role = %v", v))
		}
	}
	// A FriendlyName no Name shadows still names its attribute.
	if v := samlClaims(assertion(false, []attr{{"urn:oid:0.9.2342.19200300.100.1.3", "mail", "a@example.com"}}), false)["mail"]; !reflect.DeepEqual(v, []any{"a@example.com"}) {
		t.Errorf("a lone FriendlyName no longer names its attribute: mail = %v", v)
	}
	n := 2*len(probes) + 2
	t.Logf("FriendlyName probes: %d, let through: %d", n, len(through))
	if len(through) > 0 {
		t.Fatalf("%d of %d probes let a FriendlyName shadow a claim:\n%v", len(through), n, through)
	}
}

// attr is one attribute: its Name, FriendlyName and one value.
type attr struct{ name, friendly, value string }

// assertion holds the attributes in one statement, or one statement each.
func assertion(split bool, attrs []attr) *saml.Assertion {
	a := &saml.Assertion{Issuer: saml.Issuer{Value: "https://idp.example"},
		Subject: &saml.Subject{NameID: &saml.NameID{Value: "alice"}}}
	for _, at := range attrs {
		sa := saml.Attribute{Name: at.name, FriendlyName: at.friendly, Values: []saml.AttributeValue{{Value: at.value}}}
		if split || len(a.AttributeStatements) == 0 {
			a.AttributeStatements = append(a.AttributeStatements, saml.AttributeStatement{})
		}
		last := &a.AttributeStatements[len(a.AttributeStatements)-1]
		last.Attributes = append(last.Attributes, sa)
	}
	return a
}
