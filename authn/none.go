package authn

import (
	"log/slog"
	"net/http"
)

// None returns an authenticator that authenticates nobody and lets every
// request through as anonymous: it returns an [Identity] with Method
// [MethodNone], an empty Subject and no claims, never an error.
//
// It is meant only for services that are already authenticated upstream
// (NOT RECOMMENDED otherwise: the policy then decides on the request alone).
// It must be asked for by name, and it logs a warning when it is built. Place
// it last in a [Chain]: as it always "finds" a credential, nothing after it is
// ever asked, and a policy can tell anonymous callers apart by
// user.method == "none" or an empty user.sub.
//
// Returning an identity rather than ErrNoCredential means a chain ending in
// None never challenges: browsers are not redirected to log in.
func None(logger *slog.Logger) Authenticator {
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn("authentication is DISABLED (authn.None): every request is anonymous; " +
		"use this only behind a proxy that already authenticates callers")
	return AuthenticatorFunc(func(*http.Request) (*Identity, error) {
		return &Identity{Method: MethodNone, Claims: map[string]any{}}, nil
	})
}
