package authn

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testissuer"
)

// A verified token is remembered only until its expiry, only for its exact
// bytes, and what the caller does with an identity never changes the next.
func TestVerifiedTokensAreRememberedSafely(t *testing.T) {
	iss := testissuer.Start(t)
	var now atomic.Int64
	now.Store(time.Now().Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	b, err := NewBearer(BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID, Now: clock, ClockSkew: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := iss.Claims("alice")
	c["iat"], c["exp"] = now.Load(), now.Load()+30
	c["groups"] = []any{"staff"}
	tok := iss.Sign(t, c)
	ctx := context.Background()

	id, err := b.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	id.Claims["groups"] = []any{"admin"} // the caller's copy
	again, err := b.Verify(ctx, tok)
	if err != nil || again.Subject != "alice" || again.Claims["groups"].([]any)[0] != "staff" {
		t.Fatalf("the remembered identity: %+v, %v", again, err)
	}
	if _, err := b.Verify(ctx, tok[:len(tok)-3]+"AAA"); err == nil {
		t.Fatal("a token that differs from a remembered one was accepted")
	}
	now.Add(35) // past the expiry and the clock skew
	if _, err := b.Verify(ctx, tok); err == nil {
		t.Fatal("a remembered token was accepted after its expiry")
	}
}
