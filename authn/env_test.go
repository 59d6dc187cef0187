package authn

import (
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	lookup := func(env map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	}
	key := strings.Repeat("k", 32)
	c, err := ConfigFromEnv(lookup(map[string]string{
		"OIDC_WELL_KNOWN": "https://op.example/realms/x/.well-known/openid-configuration", "OIDC_CLIENT_ID": "app",
		"OIDC_CLIENT_SECRET": "s3cret", "APP_URI": "http://localhost:8000", "REGOGUARD_SESSION_KEYS": key + ", base64:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Bearer == nil || c.Bearer.ClientID != "app" || c.Browser == nil || c.Browser.ClientSecret != "s3cret" ||
		!c.Browser.InsecureCookies || len(c.Browser.CookieKeys) != 2 || string(c.Browser.CookieKeys[1]) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("%+v %+v", c.Bearer, c.Browser)
	}
	if _, err := NewBrowser(*c.Browser); err != nil {
		t.Fatalf("NewBrowser from env: %v", err)
	}
	if _, err := NewBearer(*c.Bearer); err != nil {
		t.Fatalf("NewBearer from env: %v", err)
	}

	c, err = ConfigFromEnv(lookup(map[string]string{"OIDC_WELL_KNOWN": "https://op.example", "OIDC_CLIENT_ID": "app"}))
	if err != nil || c.Bearer == nil || c.Browser != nil {
		t.Fatalf("bearer only: %+v %v", c, err)
	}
	c, err = ConfigFromEnv(lookup(nil))
	if err != nil || c.Bearer != nil || c.Browser != nil {
		t.Fatalf("nothing: %+v %v", c, err)
	}
	for name, env := range map[string]map[string]string{
		"no client":     {"OIDC_WELL_KNOWN": "https://op.example"},
		"no well-known": {"OIDC_CLIENT_ID": "app"},
		"no keys":       {"OIDC_WELL_KNOWN": "https://op.example", "OIDC_CLIENT_ID": "app", "APP_URI": "https://app.example"},
		"short key":     {"OIDC_WELL_KNOWN": "https://op.example", "OIDC_CLIENT_ID": "app", "APP_URI": "https://app.example", "REGOGUARD_SESSION_KEYS": "tooshort-secret-value"},
	} {
		_, err := ConfigFromEnv(lookup(env))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "tooshort-secret-value") {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestParseSessionKey(t *testing.T) {
	raw := "0123456789abcdef0123456789abcdef"
	for in, want := range map[string]string{
		"base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=":                  raw,
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=":                         raw,
		"hex:3031323334353637383961626364656630313233343536373839616263646566": raw,
		"3031323334353637383961626364656630313233343536373839616263646566":     raw,
		"  " + raw + "-and-some-more ":                                         raw + "-and-some-more",
		strings.Repeat("z", 40):                                                strings.Repeat("z", 40),
	} {
		got, err := ParseSessionKey(in)
		if err != nil || string(got) != want {
			t.Errorf("ParseSessionKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "short", "base64:!!!", "base64:c2hvcnQ=", "hex:zz", "hex:00ff", "raw:short", "hex:" + strings.Repeat("k", 40)} {
		if _, err := ParseSessionKey(in); err == nil {
			t.Errorf("ParseSessionKey(%q) accepted", in)
		} else if len(in) > 6 && strings.Contains(err.Error(), in[6:]) {
			t.Errorf("error shows the key: %v", err)
		}
	}
}
