// Package e2e holds regoguard's end-to-end tests that need parts a library
// consumer should never have to download: headless Chromium and zitadel's
// OpenID Provider. It is a module of its own, with a replace directive for
// the library, so that the library's go.mod stays lean (as chi keeps its
// examples, and go-oidc its requirements to two).
//
// Run it with `go test ./...` inside this directory; `bash .ci/run` does, in a
// network namespace that has only loopback (Chromium reaches for outside
// hosts by itself).
package e2e
