package authz

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// canonicalPath reports whether the path is one that every common server
// reads the same way, so that the policy judges the path the handler or
// upstream serves. It refuses:
//
//   - repeated slashes, a backslash, and an encoded slash or backslash
//     (%2F, %5C): IIS and others read "\" as "/";
//   - a dot segment in any encoding (".", "..", "%2e", "%2E."), also once
//     ";params" are removed: Tomcat, Jetty and Spring strip ";..." from
//     each segment before resolving dot segments, so that
//     "/public/..;/admin" is "/admin" to them;
//   - a segment still percent-encoded once decoded ("%252e%252e",
//     "%2561dmin"), which a server that decodes twice reads as another;
//   - a segment made only of dots and blanks ("...", ".. ", " "), which
//     Windows reads as ".." or as nothing, and one emptied by removing its
//     ";params" ("/;x/admin");
//   - NUL and other control characters, invalid UTF-8 (overlong forms such
//     as %C0%AE read as "." by old decoders), and the full-width or
//     look-alike dots and slashes that Unicode normalisation turns into "."
//     and "/".
func canonicalPath(r *http.Request) bool {
	p := r.URL.Path
	if p == "" || p[0] != '/' || strings.Contains(p, "//") || strings.ContainsRune(p, '\\') {
		return false
	}
	if !utf8.ValidString(p) {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || lookAlike(c) {
			return false
		}
	}
	raw := r.URL.EscapedPath()
	for seg := range strings.SplitSeq(raw[1:], "/") {
		if !canonicalSegment(seg) {
			return false
		}
	}
	return true
}

// canonicalSegment checks one raw (still escaped) path segment as it
// reads before decoding and once decoded, and refuses a segment that is
// still percent-encoded once decoded ("%252e", "%2561dmin"): a server or a
// chain of them that decodes twice reads it as another name ("..",
// "admin") than the one judged.
func canonicalSegment(seg string) bool {
	if !plainSegment(seg) {
		return false
	}
	dec, changed := unescapeLenient(seg)
	if !changed {
		return true
	}
	if strings.ContainsAny(dec, "/\\\x00") || !utf8.ValidString(dec) || !plainSegment(dec) {
		return false
	}
	_, again := unescapeLenient(dec)
	return !again
}

// plainSegment checks a segment as one decoding layer reads it.
func plainSegment(seg string) bool {
	name := seg
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		name = seg[:i]
		if name == "" {
			// ";x" alone: a Servlet container drops the whole segment.
			return false
		}
	}
	return !dotsOnly(name) && !dotsOnly(seg)
}

// dotsOnly reports whether s is not empty and made only of dots and
// blanks: "." and ".." everywhere; "...", ".. " and " " on Windows, which
// trims trailing dots and blanks from every path component.
func dotsOnly(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.', ' ', '\t':
		default:
			return false
		}
	}
	return true
}

// lookAlike reports the characters that Unicode compatibility normalisation
// (NFKC, used by some frameworks and file systems) turns into "." or "/" or
// "\".
func lookAlike(c rune) bool {
	switch c {
	case '\uff0e', '\u2024', '\ufe52', '\uff0f', '\u2215', '\u2044', '\uff3c', '\ufe68', '\u2025', '\u2026':
		return true
	}
	return false
}

// unescapeLenient decodes every valid %XX and leaves anything else as it
// is, as lenient servers do; it reports whether anything was decoded.
func unescapeLenient(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, false
	}
	var b strings.Builder
	changed := false
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			changed = true
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), changed
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
