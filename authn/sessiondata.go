package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// A SessionDataStore keeps browser sessions on the server, for providers
// whose tokens do not fit in cookies: with BrowserConfig.SessionData set,
// the session cookie holds only a sealed reference (the session ID), and
// the session itself (claims, ID token, refresh token) is stored under that
// ID, sealed with the cookie keys and bound to the ID, so that whoever
// reads the store learns no token and whoever writes it can forge no
// session.
//
// What an implementation must guarantee:
//   - It is safe for concurrent use and honours ctx (a deadline bounds
//     every call).
//   - SaveSession replaces what id held and keeps it at least ttl.
//   - LoadSession returns [ErrSessionDataNotFound] for an id it does not
//     hold (never saved, deleted, expired), and another error when it cannot
//     answer: the session is then refused with 503, its cookie kept.
//   - Ids are opaque strings of at most 128 bytes.
//
// Package authn/redisstore implements it on Redis, with [SessionStore]:
// replicas sharing it share their sessions.
type SessionDataStore interface {
	// SaveSession stores data under id for ttl, replacing what id held.
	SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration) error
	// LoadSession returns what SaveSession stored under id.
	LoadSession(ctx context.Context, id string) ([]byte, error)
	// DeleteSession forgets id.
	DeleteSession(ctx context.Context, id string) error
}

// ErrSessionDataNotFound is returned by [SessionDataStore.LoadSession] for an
// id the store does not hold.
var ErrSessionDataNotFound = errors.New("authn: session data not found")

// sessionRef is what the cookie holds when the session is on the server;
// it reads back as a session with only Ref set.
type sessionRef struct {
	Ref string `json:"ref"`
}

// serverSessionName is the name the server-side copy of session id is
// sealed for: it binds the data to its id, so that data moved to another
// id in the store does not open.
func (b *Browser) serverSessionName(id string) string {
	return b.cfg.CookieName + "|server|" + id
}

// writeServerSession stores s in the SessionDataStore and puts a reference
// to it in the cookie.
func (b *Browser) writeServerSession(w http.ResponseWriter, r *http.Request, s *session) error {
	pt, err := s.marshal()
	if err != nil {
		return err
	}
	sealed := b.session.Seal(b.serverSessionName(s.ID), pt)
	if err := b.cfg.SessionData.SaveSession(r.Context(), "oidc-session:"+s.ID, []byte(sealed), b.storeTTL(s)); err != nil {
		return fmt.Errorf("%w: session store: %w", ErrUnavailable, err)
	}
	ref, err := json.Marshal(sessionRef{Ref: s.ID})
	if err != nil {
		return err
	}
	chunks, err := b.jar.Split(b.session.Seal(b.cfg.CookieName, ref))
	if err != nil {
		return err
	}
	b.jar.Write(w, r, chunks, int(s.End-b.now().Unix()))
	return nil
}

// resolveSession replaces s, when the cookie holds only a reference to a
// server-side session, with what the SessionDataStore holds. The cookie is
// parsed once either way: a session in the cookie has no Ref.
func (b *Browser) resolveSession(ctx context.Context, s *session) error {
	if s.Ref == "" {
		return nil
	}
	ref := s.Ref
	if b.cfg.SessionData == nil {
		return errors.New("session cookie refers to a server-side session, and none are kept")
	}
	data, err := b.cfg.SessionData.LoadSession(ctx, "oidc-session:"+ref)
	if errors.Is(err, ErrSessionDataNotFound) {
		return errors.New("server-side session is gone (expired or logged out)")
	}
	if err != nil {
		return fmt.Errorf("%w: session store: %w", ErrUnavailable, err)
	}
	pt, err := b.session.Open(b.serverSessionName(ref), string(data))
	if err != nil {
		return fmt.Errorf("server-side session: %w", err)
	}
	*s = session{}
	if err := json.Unmarshal(pt, s); err != nil {
		return errMalformedSession
	}
	return nil
}
