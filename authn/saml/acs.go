package saml

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// What one response posted to the assertion consumer service may cost, and
// how many are parsed at once. crewjam/saml reads a response several times
// (a well-formedness pass, a DOM, canonical forms for the signatures, the
// decrypted assertion), each a copy per element: a 1 MiB response of empty
// elements grew the heap by 40 to 50 MiB before anything was verified
// (issue #22). A genuine response holds a few hundred elements, a few
// levels deep; one with thousands of group values still fits.
const (
	// maxSAMLResponseBytes bounds the form posted to the ACS.
	maxSAMLResponseBytes = 1 << 20
	// MaxResponseElements bounds the XML elements of one response.
	MaxResponseElements = 10000
	// MaxResponseDepth bounds how deeply they nest.
	MaxResponseDepth = 32
	// MaxConcurrentResponses is how many responses are parsed at once; a
	// post beyond them waits up to acsWait, then gets 503.
	MaxConcurrentResponses = 4
	acsWait                = 2 * time.Second
)

// errBinding marks a request that is not a response of the HTTP-POST
// binding, the only one the ACS accepts.
var errBinding = errors.New("not an HTTP-POST binding response")

// postBinding accepts only the HTTP-POST binding: exactly one SAMLResponse
// and at most one RelayState, in the POST body, no query string. crewjam's
// parser would also take an artifact (SAMLart, resolved by a call to the
// IdP), an HTTP-POST-SimpleSign message (SigAlg, Signature, KeyInfo), and
// read either from the query string too.
func postBinding(r *http.Request) error {
	if r.URL.RawQuery != "" {
		return fmt.Errorf("%w: the ACS takes no query string", errBinding)
	}
	for k, vs := range r.PostForm {
		switch {
		case k != "SAMLResponse" && k != "RelayState":
			return fmt.Errorf("%w: form field %q (only SAMLResponse and RelayState)", errBinding, k)
		case len(vs) != 1:
			return fmt.Errorf("%w: form field %s given %d times", errBinding, k, len(vs))
		}
	}
	if r.PostForm.Get("SAMLResponse") == "" {
		return fmt.Errorf("%w: no SAMLResponse", errBinding)
	}
	return nil
}

// checkResponseShape reads the response's XML as a stream, without building
// it, and refuses one with more than MaxResponseElements elements or
// nesting deeper than MaxResponseDepth, before crewjam/saml parses it.
func checkResponseShape(encoded string) error {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return fmt.Errorf("SAMLResponse is not base64: %w", err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	elements, depth := 0, 0
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("SAMLResponse is not XML: %w", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			elements++
			depth++
			if elements > MaxResponseElements {
				return fmt.Errorf("the response holds more than %d elements", MaxResponseElements)
			}
			if depth > MaxResponseDepth {
				return fmt.Errorf("the response nests deeper than %d elements", MaxResponseDepth)
			}
		case xml.EndElement:
			depth--
		}
	}
}
