package e2e

import (
	"errors"
	"net/http"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/testkit/testoidc"
)

func bearerRequest(tok string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://app.test/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// mustRefuse checks that a present credential was refused, not passed over.
func mustRefuse(t *testing.T, id *authn.Identity, err error) {
	t.Helper()
	if err == nil || errors.Is(err, authn.ErrNoCredential) {
		t.Fatalf("want a refusal, got identity %v err %v", id, err)
	}
}

// Tokens issued by a real OP through its login form: ID tokens verified,
// opaque access tokens only through userinfo, audience checked.
func TestBearerZitadel(t *testing.T) {
	const redirect = "http://127.0.0.1:9/callback"
	op := testoidc.StartZitadel(t, redirect)
	tok := op.Login(t, redirect, "profile", "email")
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		t.Fatal("no ID token")
	}

	b, err := authn.NewBearer(authn.BearerConfig{Issuer: op.Issuer + "/.well-known/openid-configuration", ClientID: op.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	id, err := b.Authenticate(bearerRequest(idToken))
	if err != nil {
		t.Fatalf("ID token refused: %v", err)
	}
	if id.Method != authn.MethodOIDC || id.Subject != "id1" || id.Token != idToken || id.Claims["iss"] != op.Issuer {
		t.Fatalf("identity %v claims %v", id, id.Claims)
	}

	// Zitadel's access tokens are opaque: refused unless validated at userinfo.
	id, err = b.Authenticate(bearerRequest(tok.AccessToken))
	mustRefuse(t, id, err)

	opaque, err := authn.NewBearer(authn.BearerConfig{Issuer: op.Issuer, ClientID: op.ClientID, OpaqueAccessTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	id, err = opaque.Authenticate(bearerRequest(tok.AccessToken))
	if err != nil {
		t.Fatalf("opaque access token refused: %v", err)
	}
	if id.Subject != "id1" || id.Claims["email"] != "test-user@zitadel.ch" {
		t.Fatalf("userinfo identity %v %v", id, id.Claims)
	}
	id, err = opaque.Authenticate(bearerRequest("not-a-real-token"))
	mustRefuse(t, id, err)

	// With userinfo enrichment an ID token, which zitadel's userinfo refuses,
	// keeps its own claims; the opaque access token is enriched.
	withUI, _ := authn.NewBearer(authn.BearerConfig{Issuer: op.Issuer, ClientID: op.ClientID, UserInfo: true, OpaqueAccessTokens: true})
	for range 2 { // the second time from the cache
		if id, err := withUI.Authenticate(bearerRequest(idToken)); err != nil || id.Subject != "id1" {
			t.Fatalf("ID token with userinfo: %v %v", id, err)
		}
	}

	// Only ID tokens accepted: the ID token still passes.
	onlyID, _ := authn.NewBearer(authn.BearerConfig{Issuer: op.Issuer, ClientID: op.ClientID, Accepted: []authn.TokenKind{authn.IDToken}})
	if _, err := onlyID.Authenticate(bearerRequest(idToken)); err != nil {
		t.Fatal(err)
	}
	// The audience must be this client's.
	other, _ := authn.NewBearer(authn.BearerConfig{Issuer: op.Issuer, ClientID: "someone-else"})
	id, err = other.Authenticate(bearerRequest(idToken))
	mustRefuse(t, id, err)
}
