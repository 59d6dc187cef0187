package pipeline

import (
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/policy"
)

// NewEvent records the front end's layout and deny status and the caller
// (anonymous when there is no identity); an event without a request (a
// shadow policy's) records none of them.
func TestNewEventRecordsWhatDecidedIt(t *testing.T) {
	d := policy.Decision{ID: "d1"}
	id := &authn.Identity{Subject: "alice", Method: authn.MethodAPIKey}
	ev := NewEvent("data.httpapi.authz", &Request{Identity: id, InputLayout: "fastapi-opa", DenyStatus: 401}, nil, d, nil, time.Now(), 0, false)
	if ev.InputLayout != "fastapi-opa" || ev.DenyStatus != 401 || ev.Caller == nil || *ev.Caller != (policy.EventCaller{Subject: "alice", Method: "apikey"}) {
		t.Errorf("event %+v, caller %+v", ev, ev.Caller)
	}
	ev = NewEvent("data.httpapi.authz", &Request{InputLayout: "regoguard", DenyStatus: 403}, nil, d, nil, time.Now(), 0, false)
	if ev.Caller == nil || !ev.Caller.Anonymous || ev.Caller.Subject != "" {
		t.Errorf("anonymous caller %+v", ev.Caller)
	}
	if ev = NewEvent("data.httpapi.authz", nil, nil, d, nil, time.Now(), 0, false); ev.Caller != nil || ev.InputLayout != "" || ev.DenyStatus != 0 {
		t.Errorf("an event without a request: %+v", ev)
	}
}
