package websession

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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

// MinKeyLen is the minimum length of a cookie secret.
const MinKeyLen = 32

// A Codec seals and opens cookie values for one purpose.
type Codec struct {
	aeads []cipher.AEAD // aeads[0] seals
}

// NewCodec derives a codec for purpose from secrets (the first seals, all
// open).
func NewCodec(secrets [][]byte, purpose string) (*Codec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("at least one cookie key is required")
	}
	c := &Codec{}
	for i, s := range secrets {
		if len(s) < MinKeyLen {
			return nil, fmt.Errorf("cookie key %d is shorter than %d bytes", i+1, MinKeyLen)
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

// Seal encrypts plaintext for the cookie called name.
func (c *Codec) Seal(name string, plaintext []byte) string {
	a := c.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(a.Seal(nonce, nonce, plaintext, []byte(name)))
}

// ErrBadCookie is returned by [Codec.Open] for a value it cannot open.
var ErrBadCookie = errors.New("cookie does not decrypt (tampered, or sealed with a retired key)")

// Open decrypts a value sealed for the cookie called name.
func (c *Codec) Open(name, value string) ([]byte, error) {
	data, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, ErrBadCookie
	}
	for _, a := range c.aeads {
		if len(data) < a.NonceSize()+a.Overhead() {
			return nil, ErrBadCookie
		}
		if pt, err := a.Open(nil, data[:a.NonceSize()], data[a.NonceSize():], []byte(name)); err == nil {
			return pt, nil
		}
	}
	return nil, ErrBadCookie
}

// ChunkSize is the largest cookie value written; with the name and
// attributes a cookie stays under the 4096 bytes browsers keep.
const ChunkSize = 3800

// ChunkName is the name of the i-th cookie of a value split across cookies:
// name, name.1, name.2, ...
func ChunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "." + strconv.Itoa(i)
}

// Jar reads and writes one session value split across at most Max cookies
// named Name, Name.1, ... on path "/", HttpOnly and SameSite=Lax.
type Jar struct {
	Name   string
	Max    int
	Secure bool
}

// Owns reports whether a cookie called name is one of the jar's: Name, or
// Name.N for any number N (beyond Max too, so none reaches the application).
func (j Jar) Owns(name string) bool {
	if name == j.Name {
		return true
	}
	n, ok := strings.CutPrefix(name, j.Name+".")
	if !ok || n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// Read reassembles the value; "" when the first cookie is missing.
func (j Jar) Read(r *http.Request) string {
	var b strings.Builder
	for i := range j.Max {
		c, err := r.Cookie(ChunkName(j.Name, i))
		if err != nil {
			break
		}
		b.WriteString(c.Value)
	}
	return b.String()
}

// Split splits value into the chunks Write would set, or returns
// [ErrSessionTooLarge].
func (j Jar) Split(value string) ([]string, error) {
	var out []string
	for len(value) > ChunkSize {
		out = append(out, value[:ChunkSize])
		value = value[ChunkSize:]
	}
	out = append(out, value)
	if len(out) > j.Max {
		return nil, ErrSessionTooLarge
	}
	return out, nil
}

// Write sets chunks (from [Jar.Split]) for maxAge seconds and deletes the
// higher-numbered cookies r still carries.
func (j Jar) Write(w http.ResponseWriter, r *http.Request, chunks []string, maxAge int) {
	for i, v := range chunks {
		http.SetCookie(w, j.cookie(ChunkName(j.Name, i), v, maxAge))
	}
	for i := len(chunks); i < j.Max; i++ {
		if _, err := r.Cookie(ChunkName(j.Name, i)); err == nil {
			http.SetCookie(w, j.cookie(ChunkName(j.Name, i), "", -1))
		}
	}
}

// Clear deletes every cookie of the jar that r carries.
func (j Jar) Clear(w http.ResponseWriter, r *http.Request) {
	for _, c := range r.Cookies() {
		if j.Owns(c.Name) {
			http.SetCookie(w, j.cookie(c.Name, "", -1))
		}
	}
}

// Strip returns r without the jar's cookies (a shallow copy when it had
// any), so that the application never sees the session.
func (j Jar) Strip(r *http.Request) *http.Request {
	cookies := r.Cookies()
	keep := cookies[:0]
	changed := false
	for _, c := range cookies {
		if j.Owns(c.Name) {
			changed = true
			continue
		}
		keep = append(keep, c)
	}
	if !changed {
		return r
	}
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	for _, c := range keep {
		r2.AddCookie(c)
	}
	return r2
}

func (j Jar) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: j.Secure, SameSite: http.SameSiteLaxMode}
}

// LoginSlots is how many login attempts of one flow a browser keeps
// pending at most: each attempt's cookie takes one of LoginSlots names,
// chosen by its state, and a later attempt in the same slot replaces it (the
// earlier one then fails with "sign-in expired, try again"). Before, every
// attempt had a cookie of its own, kept for the login timeout: a page that
// made a browser start many logins (with long return paths) made the
// callback's Cookie header larger than any server accepts, locking the user
// out until they expired (issue #22). Two tabs logging in at once share a
// slot one time in LoginSlots.
const LoginSlots = 4

// MaxLoginReturn bounds the return path a login cookie keeps (see
// [LoginReturnPath]): with it, a login cookie stays under about 1.7 KB, and
// the LoginSlots cookies a callback may carry under 8 KB together.
const MaxLoginReturn = 1024

// LoginCookieName names the cookie of one login attempt: one of
// [LoginSlots] names, chosen by a digest of its state.
func LoginCookieName(prefix string, secure bool, state string) string {
	sum := sha256.Sum256([]byte(state))
	if secure {
		prefix = "__Secure-" + prefix
	}
	return prefix + strconv.Itoa(int(sum[0])%LoginSlots)
}

// LoginID is the identifier a login attempt is recorded under once used: a
// digest of its state, so the store never holds the state itself.
func LoginID(kind, state string) string {
	sum := sha256.Sum256([]byte(state))
	return kind + ":" + hex.EncodeToString(sum[:])
}
