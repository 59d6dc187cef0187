package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// snippetPrelude declares what the README's fragments use without
// declaring it: each fragment becomes the body of a function returning an
// error, beside these variables.
const snippetPrelude = `package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/grpc"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/grpcauthz"
	"github.com/regoguard/regoguard/policy"
)

var (
	_ = fmt.Println
	_ = http.ListenAndServe
	_ = grpc.NewServer
	_ = authz.New
	_ = grpcauthz.New
	_ = policy.New
	_ = filter.New
)

var (
	ctx           context.Context
	input         ast.Value
	engine        *policy.Engine
	apiKeys, keys *authn.APIKeys
	bearer        *authn.Bearer
	mux           *http.ServeMux
	addr          string
	lis           net.Listener
	guard         *authz.Middleware
	r             *http.Request
	db            *sql.DB
	limit         int
)

func main() { _ = snippet }

func snippet() error {
`

var goBlock = regexp.MustCompile("(?ms)^```go\n(.*?)^```")

// Every Go snippet of the README compiles, as a user would paste it: a
// whole program as it is (with the policy directory it embeds), a fragment
// as the body of a function given what the fragment names without
// declaring. A snippet that does not compile (or panics on an anonymous
// caller, as the first one once did) fails here rather than for a reader.
func TestREADMEGoSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a consumer module")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlock.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) < 4 {
		t.Fatalf("%d Go snippets in README.md, want at least 4", len(blocks))
	}
	// One consumer module, one package per snippet, one build.
	consumer := newConsumer(t, root, "package main\n\nimport _ \"github.com/regoguard/regoguard/grpcauthz\"\n\nfunc main() {}\n")
	policyDir := filepath.Join(root, "cmd", "regoguard", "demo", "authz.rego")
	demo, err := os.ReadFile(policyDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		dir := filepath.Join(consumer, "snippet"+string(rune('a'+i)))
		src := b[1]
		if !strings.HasPrefix(src, "package ") {
			lines := strings.Split(strings.TrimSpace(src), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], "return ") {
				src += "return nil\n"
			}
			src = snippetPrelude + src + "}\n"
		} else if strings.Contains(src, "res.Identity.Subject") && !strings.Contains(src, "res.Identity != nil") {
			t.Errorf("snippet %d reads res.Identity.Subject without checking for an anonymous caller (nil Identity)", i+1)
		}
		for name, data := range map[string][]byte{"main.go": []byte(src), "policy/authz.rego": demo} {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	goCmd(t, consumer, "mod", "tidy")
	goCmd(t, consumer, "vet", "./...")
	goCmd(t, consumer, "build", "./...")
}
