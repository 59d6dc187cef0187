package authz

import (
	"net/http"
	"strings"
)

// upgradesToHTTP reports whether r asks to upgrade its connection to a
// protocol that carries HTTP requests of its own: HTTP/2 over cleartext
// (h2c, and its draft names h2c-14...), h2, or HTTP itself (RFC 2817's
// "HTTP/2.0"). Once the upstream answers 101, every request the client sends
// on that connection goes to the upstream without passing the guard: the
// policy would have judged only the first (h2c smuggling). Such a request
// is refused, on every path and whatever its Connection header says (a proxy
// behind may read Upgrade alone). WebSocket and other protocols that carry
// no HTTP requests are judged as the request they arrive in.
func upgradesToHTTP(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(tok), "/")
			name = strings.ToLower(strings.TrimSpace(name))
			if strings.HasPrefix(name, "h2") || name == "http" || name == "https" {
				return true
			}
		}
	}
	return r.Header.Get("Http2-Settings") != ""
}
