package authz_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// credentialProbe is a request that carries a secret outside the
// credential headers the guard consumes; keep is a part of it that is no
// credential and must stay readable.
type credentialProbe struct {
	name, target string
	header       [2]string
	secret, keep string
}

// credentialProbes are issue #22's class 2: credentials in query strings,
// in URLs inside headers, in Sec-WebSocket-Protocol, and in credential
// headers that the operator let into the input.
func credentialProbes() []credentialProbe {
	var ps []credentialProbe
	n := 0
	secret := func() string { n++; return fmt.Sprintf("S3cr3tValue%03dQ", n) }
	names := []string{"access_token", "ACCESS_TOKEN", "Access-Token", "code", "Code", "id_token", "refresh_token",
		"X-Amz-Signature", "x-amz-signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature",
		"sig", "signature", "token", "api_key", "apikey", "api-key", "key", "client_secret", "password",
		"ticket", "SAMLResponse", "hub.verify_token", "code_verifier", "sessionid"}
	for _, name := range names {
		esc := "%" + fmt.Sprintf("%02X", name[0]) + name[1:] // the first byte percent-encoded
		for _, form := range []string{"?%s=%s", "?page=2&%s=%s&sort=asc", "?%s=x&%s=%s"} {
			s := secret()
			var q string
			if strings.Count(form, "%s") == 3 {
				q = fmt.Sprintf(form, name, name, s)
			} else {
				q = fmt.Sprintf(form, name, s)
			}
			ps = append(ps, credentialProbe{name: "query " + q, target: "/api/x" + q, secret: s})
		}
		s := secret()
		ps = append(ps, credentialProbe{name: "query, encoded name " + esc, target: "/api/x?" + esc + "=" + s, secret: s})
		s = secret()
		inner := url.QueryEscape("https://app.example/cb?" + name + "=" + s + "&state=st8")
		ps = append(ps, credentialProbe{name: "query, URL inside a value, " + name, target: "/api/x?next=" + inner, secret: s})
		for _, h := range []string{"Referer", "X-Original-URI", "X-Forwarded-Uri", "X-Original-URL"} {
			s := secret()
			ps = append(ps, credentialProbe{name: h + " " + name, target: "/api/x", secret: s, keep: "st8",
				header: [2]string{h, "https://app.example/cb?state=st8&" + name + "=" + s}})
		}
		s = secret()
		ps = append(ps, credentialProbe{name: "Referer path " + name, target: "/api/x", secret: s,
			header: [2]string{"Referer", "/cb?" + name + "=" + s}})
		s = secret()
		ps = append(ps, credentialProbe{name: "Referer fragment " + name, target: "/api/x", secret: s,
			header: [2]string{"Referer", "https://app.example/cb#" + name + "=" + s + "&token_type=bearer"}})
	}
	for _, u := range []string{"https://user:%s@app.example/x", "http://%s@app.example", "https://u:%s@app.example?x=1"} {
		s := secret()
		ps = append(ps, credentialProbe{name: "Referer userinfo " + u, target: "/api/x", secret: s,
			header: [2]string{"Referer", fmt.Sprintf(u, s)}})
	}
	jwt := "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9."
	for _, v := range []string{
		"graphql-ws, " + jwt + "%s",
		jwt + "%s",
		"base64url.bearer.authorization.k8s.io.%s, base64.binary.k8s.io",
		"access_token, %s",
		"graphql-transport-ws, a8f5f167f44f4964e6c998dee827%s",
		"v10.stomp, Bearer-%s",
		"%s",
		"x-auth-token.%s",
	} {
		s := secret()
		ps = append(ps, credentialProbe{name: "Sec-WebSocket-Protocol " + v, target: "/api/x", secret: s,
			header: [2]string{"Sec-WebSocket-Protocol", fmt.Sprintf(v, s)}})
	}
	// Cookies let into the input: those named like credentials are masked,
	// the others kept.
	for _, v := range []string{"theme=dark; session=%s", "PHPSESSID=%s; theme=dark", "theme=dark;connect.sid=%s", "auth_token=%s; theme=dark", "JSESSIONID=%s; theme=dark"} {
		s := secret()
		ps = append(ps, credentialProbe{name: "Cookie " + v, target: "/api/x", secret: s, keep: "theme=dark",
			header: [2]string{"Cookie", fmt.Sprintf(v, s)}})
	}
	// Credential headers the operator let into the input (InputHeaders).
	for _, h := range []string{"Authorization", "X-Api-Token"} {
		s := secret()
		ps = append(ps, credentialProbe{name: "input header " + h, target: "/api/x", secret: s,
			header: [2]string{h, "Bearer " + s}})
	}
	return ps
}

// Issue #22, class 2: no credential outside the consumed headers reaches a
// decision event, live or shadow, or the LogInput line; what is no
// credential stays readable; KeepCredentialsInDecisionLogs keeps them.
func TestSecurityCredentialsStayOutOfDecisionEvents(t *testing.T) {
	for _, keep := range []bool{false, true} {
		live := shadowEngine(t, `allow if { input.method == "GET"; count(input) > 0 }`)
		candidate := shadowEngine(t, `allow if { input.method == "POST"; count(input) > 0 }`)
		shadowLog, liveLog := &recorder{}, &recorder{}
		shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: candidate, DecisionLogger: shadowLog,
			KeepCredentialsInDecisionLogs: keep, Queue: 4096})
		if err != nil {
			t.Fatal(err)
		}
		var lines strings.Builder
		mw, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: shadow, DecisionLogger: liveLog,
			InputHeaders: []string{"Authorization", "X-Api-Token", "Cookie"}, KeepCredentialsInDecisionLogs: keep,
			LogInput: true, DecisionLogLevel: slog.LevelInfo, Logger: slog.New(slog.NewJSONHandler(&lines, nil))})
		if err != nil {
			t.Fatal(err)
		}
		h := mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
		probes := credentialProbes()
		for _, p := range probes {
			r := httptest.NewRequest("GET", p.target, nil)
			r.Header.Set("X-Test-User", "alice")
			if p.header[0] != "" {
				r.Header.Set(p.header[0], p.header[1])
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("%s: %d", p.name, w.Code)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := shadow.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		sinks := map[string]string{"live": events(liveLog), "shadow": events(shadowLog), "LogInput line": lines.String()}
		through, kept := []string{}, 0
		for _, p := range probes {
			for sink, text := range sinks {
				if strings.Contains(text, p.secret) {
					kept++
					if !keep {
						through = append(through, sink+": "+p.name)
					}
				}
				if p.keep != "" && !strings.Contains(text, p.keep) {
					t.Errorf("%s: %s lost what is no credential (%q)", sink, p.name, p.keep)
				}
			}
		}
		for sink, text := range sinks {
			for _, want := range []string{"graphql-ws", "v10.stomp", "base64.binary.k8s.io", `"page"`, `"sort"`} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lost %q, which is no credential", sink, want)
				}
			}
		}
		if keep {
			if want := 3 * len(probes); kept != want {
				t.Errorf("with KeepCredentialsInDecisionLogs, %d of %d secrets kept", kept, want)
			}
			continue
		}
		t.Logf("credential probes: %d requests x 3 sinks = %d, let through: %d", len(probes), 3*len(probes), len(through))
		if len(through) > 0 {
			t.Fatalf("%d of %d credentials reached a decision event:\n%s", len(through), 3*len(probes), strings.Join(through, "\n"))
		}
	}
}

// events is the recorded events' inputs, as text.
func events(r *recorder) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		b.WriteString(fmt.Sprint(ev.Input))
		b.WriteByte('\n')
	}
	return b.String()
}

var _ policy.DecisionLogger = (*recorder)(nil)
