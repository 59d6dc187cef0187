package websession

import (
	"html/template"
	"net/http"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{.Extra}}</body></html>
`))

// HTMLEscape escapes s for HTML text and attribute values.
func HTMLEscape(s string) string { return template.HTMLEscapeString(s) }

// WritePage writes a small self-contained HTML page, for the browser flows'
// forms and errors. extra is trusted HTML.
func WritePage(w http.ResponseWriter, status int, title, msg string, extra string) {
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

// ErrorPage explains a failed step and, when retry is a safe path, links to
// it to try again.
func ErrorPage(w http.ResponseWriter, status int, title, msg, retry string) {
	link := ""
	if rt, ok := SafeReturnPath(retry); ok {
		link = `<p><a id="retry" href="` + HTMLEscape(rt) + `">Try again</a></p>`
	}
	WritePage(w, status, title, msg, link)
}

// LogoutForm is the confirmation page a GET of a logout route shows: a link
// or an image cannot log anybody out, a POST from the form does.
func LogoutForm(w http.ResponseWriter, action, question string) {
	WritePage(w, http.StatusOK, "Sign out", question,
		`<form method="post" action="`+HTMLEscape(action)+`"><button id="logout" type="submit">Sign out</button></form>`)
}

// LogoutFailed answers a logout whose session could not be revoked: 503,
// the session cookies kept (so that trying again can still revoke it), and
// the form to try again. It never pretends the session ended.
func LogoutFailed(w http.ResponseWriter, action string) {
	w.Header().Set("Retry-After", "5")
	WritePage(w, http.StatusServiceUnavailable, "Sign-out failed",
		"Your session could not be ended: a copy of it would still be accepted. Please try again in a moment.",
		`<form method="post" action="`+HTMLEscape(action)+`"><button id="logout" type="submit">Try again</button></form>`)
}
