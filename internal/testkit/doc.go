// Package testkit holds test helpers that start third-party parts for
// regoguard's end-to-end tests: headless Chromium (testbrowser) and zitadel's
// example OpenID Provider (testoidc). It is a module of its own so that the
// library's go.mod does not list them: only the e2e and examples modules
// require it.
package testkit
