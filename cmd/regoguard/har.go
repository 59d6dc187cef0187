package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// harFile is the part of a HAR 1.2 archive (a browser's "Save all as HAR")
// that describes requests.
type harFile struct {
	Log struct {
		Version string `json:"version"`
		Entries []struct {
			Request harRequest `json:"request"`
		} `json:"entries"`
	} `json:"log"`
}

type harRequest struct {
	Method  string `json:"method"`
	URL     string `json:"url"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	PostData *struct {
		MimeType string `json:"mimeType"`
		Text     string `json:"text"`
	} `json:"postData"`
}

// readHAR turns each request of a HAR archive into a case without an
// expectation, made by identity (nil: anonymous).
func readHAR(path string, identity *caseIdentity) ([]testCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var har harFile
	if err := json.Unmarshal(data, &har); err != nil {
		return nil, fmt.Errorf("%s: not a HAR archive: %w", path, err)
	}
	if len(har.Log.Entries) == 0 {
		return nil, fmt.Errorf("%s: no requests in log.entries", path)
	}
	cases := make([]testCase, 0, len(har.Log.Entries))
	for i, e := range har.Log.Entries {
		u, err := url.Parse(e.Request.URL)
		if err != nil || u.Path == "" && u.Host == "" {
			return nil, fmt.Errorf("%s: entry %d: bad url %q", path, i, e.Request.URL)
		}
		c := testCase{
			Name:     fmt.Sprintf("har #%d %s %s", i+1, e.Request.Method, u.RequestURI()),
			Request:  caseRequest{Method: e.Request.Method, Path: u.RequestURI(), Headers: map[string]string{}},
			Identity: identity,
			source:   path,
			line:     i + 1,
		}
		for _, h := range e.Request.Headers {
			// HTTP/2 pseudo-headers (:authority, :path) are not headers.
			if !strings.HasPrefix(h.Name, ":") {
				c.Request.Headers[h.Name] = h.Value
			}
		}
		if pd := e.Request.PostData; pd != nil && pd.Text != "" {
			c.Request.Body = pd.Text
			if pd.MimeType != "" {
				c.Request.Headers["Content-Type"] = pd.MimeType
			}
		}
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, i, err)
		}
		cases = append(cases, c)
	}
	return cases, nil
}
