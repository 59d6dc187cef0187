// Package testkit holds test helpers that start third-party parts for
// regoguard's tests: headless Chromium (testbrowser), redis-server
// (testredis), zitadel's example OpenID Provider (testoidc) and crewjam's
// SAML identity provider (testsaml). It is a module of its own so that the
// library's go.mod does not list them: only the modules whose tests need
// them require it.
package testkit
