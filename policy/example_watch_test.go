package policy_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// WatchFiles reloads the policy when its files change: a deploy tool or an
// editor writes a new version, and the next decisions use it. A version
// that fails to compile is logged and the working one keeps serving.
func ExampleEngine_WatchFiles() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the watch

	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "authz.rego")
	if err := os.WriteFile(file, []byte("package httpapi.authz\nallow := true\n"), 0o600); err != nil {
		log.Fatal(err)
	}

	p, err := policy.LoadFiles(dir)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		log.Fatal(err)
	}
	if err := engine.WatchFiles(ctx, 50*time.Millisecond, dir); err != nil {
		log.Fatal(err)
	}
	d, _ := engine.Eval(ctx, ast.NewObject())
	fmt.Println(d.Allow)

	// Write the new version beside the file and rename it over, as deploy
	// tools do, so that the watch never reads half a file.
	first := engine.Revision()
	if err := os.WriteFile(file+".new", []byte("package httpapi.authz\nallow := false\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); engine.Revision() == first && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	d, _ = engine.Eval(ctx, ast.NewObject())
	fmt.Println(d.Allow, engine.Status().Loads)
	// Output:
	// true
	// false 2
}
