package main

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn"
)

// Issue #15: REGOGUARD_SESSION_KEYS was parsed twice, differently; the
// base64: form that authn.ConfigFromEnv documents made serve exit with
// "neither hex nor base64". serve and the library now read every form alike.
func TestSessionKeysOneParser(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, v := range []string{
		"base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"hex:" + strings.Repeat("ab", 32),
		strings.Repeat("ab", 32),
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=," + strings.Repeat("cd", 32),
	} {
		cli, err := sessionKeys([]string{v}, logger)
		if err != nil {
			t.Errorf("serve refused %q: %v", v, err)
			continue
		}
		env, err := authn.ConfigFromEnv(func(k string) (string, bool) {
			return map[string]string{authn.EnvWellKnown: "https://op.example", authn.EnvClientID: "c",
				authn.EnvAppURI: "https://app.example", authn.EnvSessionKeys: v}[k], true
		})
		if err != nil {
			t.Errorf("ConfigFromEnv refused %q: %v", v, err)
			continue
		}
		if len(cli) != len(env.Browser.CookieKeys) {
			t.Fatalf("%q: %d keys in serve, %d in the library", v, len(cli), len(env.Browser.CookieKeys))
		}
		for i := range cli {
			if !bytes.Equal(cli[i], env.Browser.CookieKeys[i]) {
				t.Errorf("%q: key %d differs between serve and the library", v, i+1)
			}
		}
	}
}
