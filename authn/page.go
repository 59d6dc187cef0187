package authn

import (
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{.Extra}}</body></html>
`))

func htmlEscape(s string) string { return template.HTMLEscapeString(s) }

// writePage writes a small self-contained HTML page, for the browser flows'
// forms and errors. extra is trusted HTML.
func writePage(w http.ResponseWriter, status int, title, msg string, extra string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, struct {
		Title, Message string
		Extra          template.HTML
	}{title, msg, template.HTML(extra)})
}

// loginCookieName names the cookie of one login attempt, from its state:
// each attempt has its own cookie, so two tabs logging in do not clash.
func loginCookieName(prefix string, secure bool, state string) string {
	sum := sha256.Sum256([]byte(state))
	if secure {
		prefix = "__Secure-" + prefix
	}
	return prefix + hex.EncodeToString(sum[:8])
}

// errorPage explains a failed sign-in and offers to try again.
func (b *Browser) errorPage(w http.ResponseWriter, status int, title, msg, retry string) {
	link := ""
	if rt, ok := safeReturnPath(retry); ok {
		link = `<p><a id="retry" href="` + htmlEscape(b.cfg.LoginPath+"?rd="+url.QueryEscape(rt)) + `">Try again</a></p>`
	}
	writePage(w, status, title, msg, link)
}
