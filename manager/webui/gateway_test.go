package webui

import (
	"net/url"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Every method the gateway serves is one the authorisation table lets
// the read-only viewer call: the gateway exposes reads alone.
func TestGatewayServesReadsOnly(t *testing.T) {
	for name, m := range reads {
		if !strings.HasSuffix(m.fullName, "/"+name) {
			t.Errorf("gateway method %s calls %s", name, m.fullName)
		}
		if !authz.Allows(m.fullName, authz.RoleViewer) {
			t.Errorf("gateway serves %s, which the viewer may not call", m.fullName)
		}
		if (m.unary == nil) == (m.open == nil) {
			t.Errorf("%s must be either unary or a stream", name)
		}
	}
}

func TestFillRequest(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		want    *shoalpb.ListTasksRequest
		wantErr string
	}{
		{"empty", "", &shoalpb.ListTasksRequest{}, ""},
		{"proto names", "service=web&node=n1&stale=true", &shoalpb.ListTasksRequest{Service: "web", Node: "n1", Stale: true}, ""},
		{"unknown field", "servce=web", nil, `ListTasksRequest has no field "servce" (fields: service, node, stale, page_size, page_token)`},
		{"bad bool", "stale=maybe", nil, `field stale: "maybe" is not true or false`},
		{"twice", "service=a&service=b", nil, "field service: given 2 times; it takes one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got := &shoalpb.ListTasksRequest{}
			err = fillRequest(got, q)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want.String() {
				t.Fatalf("request %v, want %v", got, tt.want)
			}
		})
	}
	// A repeated string field takes the key more than once; an integer
	// is parsed with its sign.
	q := url.Values{"filters": {"type=node", "node=n1"}}
	ev := &shoalpb.EventsRequest{}
	if err := fillRequest(ev, q); err != nil || len(ev.GetFilters()) != 2 {
		t.Fatalf("events request %v, err %v", ev, err)
	}
	logs := &shoalpb.ServiceLogsRequest{}
	if err := fillRequest(logs, url.Values{"tail": {"-1"}}); err != nil || logs.GetTail() != -1 {
		t.Fatalf("logs request %v, err %v", logs, err)
	}
	if err := fillRequest(logs, url.Values{"since": {"x"}}); err == nil || !strings.Contains(err.Error(), "cannot be given in a query") {
		t.Fatalf("a message field from a query: err %v", err)
	}
}

// Every write the gateway makes is one the authorisation table gives the
// operator and refuses the viewer: the table, not the gateway, decides.
func TestGatewayWritesFollowTheTable(t *testing.T) {
	for name, m := range writes {
		if !strings.HasSuffix(m.fullName, "/"+name) {
			t.Errorf("gateway write %s calls %s", name, m.fullName)
		}
		if authz.Allows(m.fullName, authz.RoleViewer) || !authz.Allows(m.fullName, authz.RoleOperator) {
			t.Errorf("the table lets the viewer make %s, or not the operator", m.fullName)
		}
		if m.unary == nil {
			t.Errorf("write %s must be unary", name)
		}
		if _, ok := reads[name]; ok {
			t.Errorf("%s is both a read and a write", name)
		}
	}
}
