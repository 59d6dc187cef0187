package flatstore

import (
	"encoding/json"
	"errors"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/util"
)

// errSyntax sends the parser back to encoding/json, for its exact answer.
var errSyntax = errors.New("flatstore: not plain JSON")

// ParseJSON adds the JSON document in data straight into the builder,
// without building Go values. It accepts exactly what OPA's util.UnmarshalJSON
// accepts (one JSON value, surrounded by white space), with the same error
// for what it rejects, and gives the same values (numbers as their literal,
// the last of duplicate keys).
func (b *Builder) ParseJSON(data []byte) (Value, error) {
	b.reserve(len(data))
	p := parser{b: b, s: data}
	p.ws()
	r, err := p.value(0)
	if err == nil {
		p.ws()
		if p.i != len(p.s) {
			err = errSyntax
		}
	}
	if err == nil {
		err = b.err
		return Value{r}, err
	}
	if errors.Is(err, ErrDepth) {
		return Value{}, err
	}
	// Something this parser does not take on: encoding/json decides, and
	// gives its own error.
	var v any
	if jerr := util.UnmarshalJSON(data, &v); jerr != nil {
		return Value{}, jerr
	}
	return b.FromGo(v)
}

type parser struct {
	b *Builder
	s []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (ref, error) {
	if depth > MaxDepth {
		return 0, ErrDepth
	}
	if p.i >= len(p.s) {
		return 0, errSyntax
	}
	p.b.tick()
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		id, err := p.str()
		return scalar(kString, id), err
	case c == 't':
		return scalar(kTrue, 0), p.lit("true")
	case c == 'f':
		return scalar(kFalse, 0), p.lit("false")
	case c == 'n':
		return scalar(kNull, 0), p.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return 0, errSyntax
}

func (p *parser) lit(w string) error {
	if len(p.s)-p.i < len(w) || string(p.s[p.i:p.i+len(w)]) != w {
		return errSyntax
	}
	p.i += len(w)
	return nil
}

func digits(s []byte, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func (p *parser) number() (ref, error) {
	s, i := p.s, p.i
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		return 0, errSyntax
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return 0, errSyntax
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return 0, errSyntax
		}
		i = j
	}
	id := p.b.intern(s[p.i:i])
	p.i = i
	return scalar(kNumber, id), nil
}

// str reads a string at p.i and interns it.
func (p *parser) str() (uint32, error) {
	s := p.s
	start := p.i + 1
	for i := start; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			p.i = i + 1
			return p.b.intern(s[start:i]), nil
		case c == '\\' || c >= 0x80:
			return p.slowStr()
		case c < 0x20:
			return 0, errSyntax
		}
	}
	return 0, errSyntax
}

// slowStr reads a string with escapes or non-ASCII bytes: encoding/json
// unquotes it, so that escapes, surrogates and invalid UTF-8 come out as
// they would from it.
func (p *parser) slowStr() (uint32, error) {
	s := p.s
	i := p.i + 1
	for ; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '"' {
			break
		}
	}
	if i >= len(s) {
		return 0, errSyntax
	}
	var out string
	if err := json.Unmarshal(s[p.i:i+1], &out); err != nil {
		return 0, errSyntax
	}
	p.i = i + 1
	return p.b.internString(out), nil
}

func (p *parser) object(depth int) (ref, error) {
	p.i++ // {
	p.ws()
	base := len(p.b.pairs)
	defer func() { p.b.pairs = p.b.pairs[:base] }()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return p.b.object(nil), nil
	}
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return 0, errSyntax
		}
		key, err := p.str()
		if err != nil {
			return 0, err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return 0, errSyntax
		}
		p.i++
		p.ws()
		v, err := p.value(depth + 1)
		if err != nil {
			return 0, err
		}
		p.b.pairs = append(p.b.pairs, pair{key, v})
		p.ws()
		if p.i >= len(p.s) {
			return 0, errSyntax
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.ws()
		case '}':
			p.i++
			return p.b.object(p.b.pairs[base:]), nil
		default:
			return 0, errSyntax
		}
	}
}

func (p *parser) array(depth int) (ref, error) {
	p.i++ // [
	p.ws()
	base := len(p.b.elems)
	defer func() { p.b.elems = p.b.elems[:base] }()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return p.b.array(nil), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return 0, err
		}
		p.b.elems = append(p.b.elems, v)
		p.ws()
		if p.i >= len(p.s) {
			return 0, errSyntax
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.ws()
		case ']':
			p.i++
			return p.b.array(p.b.elems[base:]), nil
		default:
			return 0, errSyntax
		}
	}
}

func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
