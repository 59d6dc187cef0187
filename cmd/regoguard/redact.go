package main

import (
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// userinfoInURL finds the userinfo of a URL inside any text: a scheme,
// "://", then everything up to an "@" that comes before the host ends.
var userinfoInURL = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s"'<>]*@`)

// redactedUserinfo replaces the userinfo of a URL in a log line.
const redactedUserinfo = "REDACTED@"

// redactURLs returns s with the userinfo (user and password) of every URL
// in it replaced: "http://svc:pw@host/x" reads "http://REDACTED@host/x". A
// user name alone is redacted too (a token is often passed as one).
func redactURLs(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	return userinfoInURL.ReplaceAllString(s, "${1}"+redactedUserinfo)
}

// redactURL is a URL as log lines print it: without its userinfo.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return redactURLs(raw)
}

// redactAttr is the loggers' ReplaceAttr: every string a log line prints
// (the message, attributes, errors, anything printed with %v) loses the
// userinfo of the URLs it holds, whoever logged it (serve, the bundle
// downloader, net/http's server errors, a library's error message).
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.Contains(s, "@") {
			a.Value = slog.StringValue(redactURLs(s))
		}
	case slog.KindAny:
		var s string
		switch v := a.Value.Any().(type) {
		case error:
			s = v.Error()
		case interface{ String() string }:
			s = v.String()
		default:
			return a
		}
		if strings.Contains(s, "@") && strings.Contains(s, "://") {
			a.Value = slog.StringValue(redactURLs(s))
		}
	}
	return a
}
