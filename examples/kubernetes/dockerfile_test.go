package kubernetes

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The sidecar's image is the one the repository's Dockerfile builds: a
// static binary stamped with its version, in a distroless image, run as the
// same non-root user the pod's security context names. (Docker cannot run
// here; this checks what the manifests and the Dockerfile promise each
// other.)
func TestSidecarImageIsTheRepositoryDockerfile(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatalf("the top-level Dockerfile the manifests use: %v", err)
	}
	df := string(data)
	m, _ := load(t)
	rg := findContainer(t, m.get(t, "Deployment", "notes").Spec.Template.Spec.Containers, "regoguard")
	if !strings.Contains(df, "-t "+rg.Image+" .") {
		t.Errorf("the Dockerfile's build command does not tag the manifest's image %s", rg.Image)
	}
	for what, re := range map[string]string{
		"a build stage":                  `(?m)^FROM golang:\S+ AS build$`,
		"a static binary":                `CGO_ENABLED=0 go build`,
		"the version stamp":              `-X main\.version=\$\{VERSION\}`,
		"a distroless final image":       `(?m)^FROM gcr\.io/distroless/static\S*:nonroot$`,
		"the non-root user of the pod":   `(?m)^USER 65532:65532$`,
		"the binary as the entry point":  `(?m)^ENTRYPOINT \["/regoguard"\]$`,
		"only the binary in the runtime": `(?m)^COPY --from=build /out/regoguard /regoguard$`,
	} {
		if !regexp.MustCompile(re).MatchString(df) {
			t.Errorf("the Dockerfile lacks %s (%s)", what, re)
		}
	}
	if app, err := os.ReadFile("app.yaml"); err != nil || !strings.Contains(string(app), "runAsUser: 65532") {
		t.Errorf("app.yaml does not run the pod as user 65532, the image's user")
	}
}
