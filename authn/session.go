package authn

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cookies are sealed with AES-256-GCM, an AEAD: a cookie that was altered,
// forged, or moved from one cookie name to another fails to open. Keys are
// derived with HKDF-SHA256 from the configured secrets, one per purpose
// (session, login), so a login cookie can never be presented as a session. The
// first secret seals; every secret opens, which lets operators rotate keys by
// prepending a new one and removing the old one after the session lifetime.
//
// This takes ~60 lines of the standard library instead of
// github.com/gorilla/securecookie (AES-CTR + HMAC, two keys per pair, gob): one
// AEAD primitive, associated data binding the cookie name, and no dependency.

// MinCookieKeyLen is the minimum length of a cookie secret.
const MinCookieKeyLen = 32

type cookieCodec struct {
	aeads []cipher.AEAD // aeads[0] seals
}

func newCookieCodec(secrets [][]byte, purpose string) (*cookieCodec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("authn: at least one cookie key is required")
	}
	c := &cookieCodec{}
	for i, s := range secrets {
		if len(s) < MinCookieKeyLen {
			return nil, fmt.Errorf("authn: cookie key %d is shorter than %d bytes", i+1, MinCookieKeyLen)
		}
		k, err := hkdf.Key(sha256.New, s, nil, "regoguard authn cookie v1 "+purpose, 32)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

// seal encrypts plaintext for the cookie called name.
func (c *cookieCodec) seal(name string, plaintext []byte) string {
	a := c.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plaintext, []byte(name)))
}

var errBadCookie = errors.New("cookie does not decrypt (tampered, or sealed with a retired key)")

// open decrypts a value sealed for the cookie called name.
func (c *cookieCodec) open(name, value string) ([]byte, error) {
	data, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, errBadCookie
	}
	for _, a := range c.aeads {
		if len(data) < a.NonceSize()+a.Overhead() {
			return nil, errBadCookie
		}
		if pt, err := a.Open(nil, data[:a.NonceSize()], data[a.NonceSize():], []byte(name)); err == nil {
			return pt, nil
		}
	}
	return nil, errBadCookie
}

// chunkSize is the largest cookie value written; with the name and attributes
// a cookie stays under the 4096 bytes browsers keep.
const chunkSize = 3800

// chunkName is the name of the i-th cookie of a value split across cookies:
// name, name.1, name.2, ...
func chunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "." + strconv.Itoa(i)
}

// readChunks reassembles a value split by writeChunks. It returns "" when the
// first cookie is missing.
func readChunks(r *http.Request, name string, max int) string {
	var b strings.Builder
	for i := range max {
		c, err := r.Cookie(chunkName(name, i))
		if err != nil {
			break
		}
		b.WriteString(c.Value)
	}
	return b.String()
}

// ErrSessionTooLarge is reported when a session does not fit in the allowed
// number of cookies even after trimming.
var ErrSessionTooLarge = errors.New("authn: session too large for its cookies")

// splitChunks splits value into at most max chunks.
func splitChunks(value string, max int) ([]string, error) {
	var out []string
	for len(value) > chunkSize {
		out = append(out, value[:chunkSize])
		value = value[chunkSize:]
	}
	out = append(out, value)
	if len(out) > max {
		return nil, ErrSessionTooLarge
	}
	return out, nil
}

// A Denylist remembers identifiers until they expire: session IDs revoked by
// logout, and login attempts already consumed. Implementations must be safe
// for concurrent use. The in-memory [NewMemoryDenylist] protects one process;
// several replicas need a shared implementation (e.g. on Redis).
type Denylist interface {
	// Add records id until the given time. It reports whether id was new:
	// false means it was already present (a replay).
	Add(ctx context.Context, id string, until time.Time) (bool, error)
	// Contains reports whether id is recorded and not yet expired.
	Contains(ctx context.Context, id string) (bool, error)
}

// NewMemoryDenylist returns an in-memory [Denylist] holding at most max live
// entries (default 100 000). When full, Add fails closed: the login or logout
// is refused rather than a replay let through.
func NewMemoryDenylist(max int, now func() time.Time) Denylist {
	if max <= 0 {
		max = 100000
	}
	if now == nil {
		now = time.Now
	}
	return &memDenylist{max: max, now: now, m: map[string]time.Time{}}
}

type memDenylist struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	m   map[string]time.Time
}

// ErrDenylistFull is returned by the in-memory denylist when it is full.
var ErrDenylistFull = errors.New("authn: denylist full")

func (d *memDenylist) Add(_ context.Context, id string, until time.Time) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if t, ok := d.m[id]; ok && now.Before(t) {
		return false, nil
	}
	if len(d.m) >= d.max {
		for k, t := range d.m {
			if !now.Before(t) {
				delete(d.m, k)
			}
		}
		if len(d.m) >= d.max {
			return false, ErrDenylistFull
		}
	}
	d.m[id] = until
	return true, nil
}

func (d *memDenylist) Contains(_ context.Context, id string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.m[id]
	return ok && d.now().Before(t), nil
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
