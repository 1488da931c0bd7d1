package webui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func get(t *testing.T, url string, host string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// The gateway answers what the gRPC method answers, refuses writes and
// bad queries with the field named, and streams events as they commit.
func TestGatewayMapsToControlAPI(t *testing.T) {
	u := startUICluster(t, 1, 2)
	u.createService("web", 3)
	base := u.uiURL(0)

	code, body := get(t, base+"/api/v1/ListNodes", "")
	if code != http.StatusOK {
		t.Fatalf("ListNodes: %d %s", code, body)
	}
	var nodes shoalpb.ListNodesResponse
	if err := protojson.Unmarshal(body, &nodes); err != nil {
		t.Fatalf("ListNodes JSON: %v\n%s", err, body)
	}
	direct, err := u.c.Client(0).ListNodes(t.Context(), &shoalpb.ListNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hostnames(&nodes), hostnames(direct); got != want {
		t.Fatalf("gateway lists nodes %s, the gRPC API %s", got, want)
	}

	code, body = get(t, base+"/api/v1/ListTasks?service=web", "")
	var tasks shoalpb.ListTasksResponse
	if code != http.StatusOK || protojson.Unmarshal(body, &tasks) != nil || len(tasks.GetTasks()) != 3 {
		t.Fatalf("ListTasks?service=web: %d, %d tasks: %s", code, len(tasks.GetTasks()), body)
	}

	for _, tc := range []struct {
		path, host string
		code       int
		msg        string
	}{
		{"/api/v1/ScaleService?service=web&replicas=0", "", http.StatusNotFound, `no method "ScaleService"`},
		{"/api/v1/ListTasks?servce=web", "", http.StatusBadRequest, `no field "servce"`},
		{"/api/v1/GetService?service=nope", "", http.StatusNotFound, "nope"},
		{"/api/v1/Events?filters=colour=red", "", http.StatusBadRequest, "colour"},
		{"/api/v1/ListNodes", "evil.example:80", http.StatusMisdirectedRequest, "answers only to an IP address or localhost"},
	} {
		code, body := get(t, base+tc.path, tc.host)
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || code != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("GET %s (host %q): %d %s; want %d with %q", tc.path, tc.host, code, body, tc.code, tc.msg)
		}
	}
	if n, err := u.running("web"); err != nil || n != 3 {
		t.Fatalf("after the refused scale: %d running, %v", n, err)
	}

	code, body = get(t, base+"/", "")
	if code != http.StatusOK || !strings.Contains(string(body), `<script type="module" src="app.js">`) {
		t.Fatalf("GET /: %d %s", code, body)
	}

	checkEventStream(t, u, base)
}

func hostnames(r *shoalpb.ListNodesResponse) string {
	var out []string
	for _, n := range r.GetNodes() {
		out = append(out, n.GetNode().GetHostname()+"="+n.GetNode().GetStatus())
	}
	return strings.Join(out, ",")
}

// checkEventStream opens the Events stream, scales the service and waits
// for the service's event.
func checkEventStream(t *testing.T, u *uiCluster, base string) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/Events?filters=type=service", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("Events: %d %s", resp.StatusCode, ct)
	}
	// The response headers come once the stream is subscribed: a change
	// made now reaches it.
	if _, err := u.c.Client(0).ScaleService(t.Context(), &shoalpb.ScaleServiceRequest{Service: "web", Replicas: 4}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type       string            `json:"type"`
			Name       string            `json:"name"`
			Attributes map[string]string `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if ev.Type == "service" && ev.Name == "web" && ev.Attributes["replicas"] == "4" {
			return
		}
	}
	t.Fatal(fmt.Errorf("the event stream ended without the scale's event: %v", sc.Err()))
}
