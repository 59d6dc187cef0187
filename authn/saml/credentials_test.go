package saml_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/saml"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testkit/testsaml"
	"github.com/regoguard/regoguard/policy"
)

type events struct {
	mu  sync.Mutex
	all []policy.DecisionEvent
}

func (e *events) LogDecision(_ context.Context, ev policy.DecisionEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
	return nil
}

// Issue #22 item 1 for SAML: the service provider declares its session
// cookie, under its configured name, and the authz guard keeps it out of
// the handler's request, the decision event, the decision line and the
// access log, even when Config.InputHeaders lets Cookie into the input.
func TestSAMLSessionCookieDeclaredAndNeverLeaks(t *testing.T) {
	key, cert := testsaml.KeyPair(t, "regoguard test SP")
	app := startSAMLAppWith(t, key, cert, func(c *saml.Config) { c.CookieName = "corp-sso" })
	if got := authn.CredentialsOf(app.SP).Cookies; fmt.Sprint(got) != "[corp-sso]" {
		t.Fatalf("the SP declares the cookies %v, want [corp-sso]", got)
	}
	c := newClient(t)
	acs, fields := idpAnswer(t, c, app, "/", testsaml.User)
	resp, err := c.PostForm(acs, fields)
	testsaml.Body(t, resp, err)
	u, _ := url.Parse(app.URL)
	var session []string
	cookies := []string{"theme=dark"}
	for _, ck := range c.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
		if strings.HasPrefix(ck.Name, "corp-sso") {
			session = append(session, ck.Value)
		}
	}
	if len(session) == 0 {
		t.Fatalf("no corp-sso session cookie after login: %v", c.Jar.Cookies(u))
	}
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"p.rego": `
package httpapi.authz
allow if input.user.method == "saml"
`}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dl := &events{}
	guard, err := authz.New(authz.Config{Authenticator: app.SP, Evaluator: engine, Logger: logger, AccessLog: logger,
		DecisionLogger: dl, LogInput: true, InputHeaders: []string{"Cookie"}})
	if err != nil {
		t.Fatal(err)
	}
	var got *http.Request
	h := guard.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r }))
	r := httptest.NewRequest("GET", app.URL+"/reports", nil)
	r.Header.Set("Cookie", strings.Join(cookies, "; "))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got == nil {
		t.Fatalf("the signed-in request was refused: %d %s", w.Code, w.Body)
	}
	leaks := []string{}
	if strings.Contains(got.Header.Get("Cookie"), "corp-sso") || !strings.Contains(got.Header.Get("Cookie"), "theme=dark") {
		leaks = append(leaks, "the handler got the cookies "+got.Header.Get("Cookie"))
	}
	if len(dl.all) != 1 {
		t.Fatalf("%d decision events", len(dl.all))
	}
	ev, _ := json.Marshal(dl.all[0].Input)
	for _, v := range session {
		if strings.Contains(string(ev), v) {
			leaks = append(leaks, "the decision event holds the session")
		}
		if strings.Contains(logs.String(), v) {
			leaks = append(leaks, "a log line holds the session")
		}
	}
	if !strings.Contains(string(ev), "theme=dark") {
		t.Errorf("the other cookie is not in the input: %s", ev)
	}
	if len(leaks) > 0 {
		t.Errorf("%d leaks of the SAML session cookie: %v", len(leaks), leaks)
	}
}
