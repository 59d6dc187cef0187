// Package jsonkeys refuses JSON documents that name a key twice in one
// object, for every front end that hands a JSON body to the policy.
package jsonkeys

import (
	"encoding/json"
	"fmt"
)

// Unique reads one JSON value from dec and refuses an object that names a
// key twice: encoding/json keeps the last, other parsers the first, so a
// policy and the service behind it could read two different documents.
func Unique(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string)
			if seen[key] {
				return fmt.Errorf("the key %q appears twice in one object", key)
			}
			seen[key] = true
			if err := Unique(dec); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := Unique(dec); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
