package saml_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Issue #15: an API-key-only program (authn, authz, policy) links no SAML or
// XML-signature package; only importing authn/saml does.
func TestOnlyImportersLinkSAML(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	deps := func(pkgs ...string) string {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
		if err != nil {
			t.Fatalf("go list -deps %v: %v", pkgs, err)
		}
		return string(out)
	}
	const mod = "github.com/regoguard/regoguard/"
	heavy := []string{"github.com/crewjam/saml", "github.com/russellhaering/goxmldsig", "github.com/beevik/etree"}
	lean := deps(mod+"authn", mod+"authz", mod+"policy")
	for _, h := range heavy {
		if strings.Contains(lean, h) {
			t.Errorf("authn, authz and policy link %s", h)
		}
	}
	if !strings.Contains(deps(mod+"authn/saml"), heavy[0]) {
		t.Error("authn/saml does not link crewjam/saml: the check above proves nothing")
	}
}
