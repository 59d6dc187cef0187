// Package testbrowser starts headless Chromium for tests, limited to
// loopback.
package testbrowser

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package installs the browser.
const Path = "/usr/bin/chromium"

// New starts headless Chromium and returns a chromedp context for it. Run
// browser tests in a network namespace with only loopback (.ci/run does):
// even with these flags Chromium reaches for Google's services. It skips the
// test when Chromium is missing, unless CI is set, where that is a failure,
// and when TEST_SKIP_BROWSER is set (the quick local run).
func New(tb testing.TB) context.Context {
	tb.Helper()
	if os.Getenv("TEST_SKIP_BROWSER") != "" {
		tb.Skip("TEST_SKIP_BROWSER is set (bash .ci/run --quick)")
	}
	if _, err := os.Stat(Path); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("chromium is required in CI: %v", err)
		}
		tb.Skipf("chromium not installed (%v): apt-get install chromium", err)
	}
	// Chromium reaches for outside hosts even with every flag below: it
	// runs only where loopback is the only network, as inside `unshare -n`
	// (.ci/run does that).
	if external := externalInterfaces(); len(external) > 0 && os.Getenv("TESTBROWSER_NETWORK") != "allow" {
		msg := fmt.Sprintf("network interfaces %v are up: Chromium would reach outside hosts; run the tests inside "+
			"`unshare -n sh -c 'ip link set lo up && exec go test ./...'` (bash .ci/run does) or set TESTBROWSER_NETWORK=allow", external)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Anything not on loopback goes to a dead proxy (loopback bypasses
		// proxies): a second fence for runs outside a network namespace.
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"),
	}
	// A safety net only: no assertion depends on timing.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	tb.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tb.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(ctx)
	tb.Cleanup(cancelCtx)
	return ctx
}

// externalInterfaces lists the network interfaces, other than loopback, that
// are up. Inside `unshare -n` there are none.
func externalInterfaces() []string {
	ifs, err := net.Interfaces()
	if err != nil {
		return []string{"unknown: " + err.Error()}
	}
	var out []string
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			out = append(out, i.Name)
		}
	}
	return out
}
