package webui_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/manager/webui"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// tlsUI is a manager serving the UI with --ui-tls, and HTTPS clients of
// it with or without a certificate.
type tlsUI struct {
	t    *testing.T
	c    *managertest.Cluster
	base string
}

func startTLSUI(t *testing.T) *tlsUI {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true, Edit: func(cfg *manager.Config) {
		cfg.UIAddr, cfg.UITLS = "127.0.0.1:0", true
	}})
	return &tlsUI{t: t, c: c, base: "https://" + c.Manager(0).UIAddr()}
}

// client is an HTTPS client presenting a certificate of role (none for "").
func (u *tlsUI) client(role string) *http.Client {
	cfg := &tls.Config{RootCAs: u.c.Manager(0).Credentials().Roots(), ServerName: pki.RoleManager, MinVersion: tls.VersionTLS13}
	if role != "" {
		creds := u.c.Credentials(role)
		cert, err := tls.X509KeyPair(creds.CertPEM(), creds.KeyPEM())
		if err != nil {
			u.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	u.t.Cleanup(cl.CloseIdleConnections)
	return cl
}

func (u *tlsUI) do(cl *http.Client, method, path string, hdr http.Header, body string) (int, string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.t.Context()), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, strings.NewReader(body))
	if err != nil {
		u.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := cl.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// session reads the caller's role and the CSRF token.
func (u *tlsUI) session(cl *http.Client) (role, token string) {
	u.t.Helper()
	code, body := u.do(cl, http.MethodGet, "/api/session", nil, "")
	if code != http.StatusOK {
		u.t.Fatalf("session: %d %s", code, body)
	}
	var s struct{ Role, CSRF_Token string }
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		u.t.Fatal(err)
	}
	return s.Role, s.CSRF_Token
}

func (u *tlsUI) createService(name string) {
	_, err := u.c.Client(0).CreateService(u.t.Context(), &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: name, Image: "busybox:fake", Mode: "replicated", Replicas: 1,
	}, NoResolveImage: true})
	if err != nil {
		u.t.Fatal(err)
	}
}

// Writes over --ui-tls with real client certificates: the operator
// scales, the viewer (no certificate) and a worker are refused with the
// role named, a cross-site or tokenless write is refused, and bad input
// gets the field, the value and the limit.
func TestUIWritesNeedAnOperatorCertificate(t *testing.T) {
	u := startTLSUI(t)
	u.createService("web")
	op, viewer, worker := u.client(pki.RoleOperator), u.client(""), u.client(pki.RoleWorker)
	role, token := u.session(op)
	if role != pki.RoleOperator || token == "" {
		t.Fatalf("operator session: role %q token %q", role, token)
	}
	role, viewerToken := u.session(viewer)
	if role != "viewer" || viewerToken == token {
		t.Fatalf("no certificate: role %q, want viewer with a token of its own", role)
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}, http.CanonicalHeaderKey(webui.CSRFHeader): {token}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	scale := `{"service":"web","replicas":3}`
	for _, tc := range []struct {
		name  string
		cl    *http.Client
		hdr   http.Header
		body  string
		code  int
		parts []string
	}{
		{"viewer", viewer, hdr(), scale, http.StatusForbidden, []string{"ScaleService needs role operator", "viewer web-ui"}},
		{"worker", worker, hdr(), scale, http.StatusForbidden, []string{"needs role operator", "worker"}},
		{"cross-site", op, hdr("Sec-Fetch-Site", "cross-site"), scale, http.StatusForbidden, []string{"cross-site write refused", `"cross-site"`}},
		{"other origin", op, hdr("Origin", "https://evil.example"), scale, http.StatusForbidden, []string{"Origin is", "evil.example"}},
		{"no token", op, hdr(webui.CSRFHeader, ""), scale, http.StatusForbidden, []string{webui.CSRFHeader, "missing"}},
		{"another browser's token", op, hdr(webui.CSRFHeader, viewerToken), scale, http.StatusForbidden, []string{webui.CSRFHeader}},
		{"wrong token", op, hdr(webui.CSRFHeader, "x"), scale, http.StatusForbidden, []string{webui.CSRFHeader}},
		{"form post", op, hdr("Content-Type", "application/x-www-form-urlencoded"), "service=web&replicas=3", http.StatusBadRequest, []string{"application/json"}},
		{"replicas -1", op, hdr(), `{"service":"web","replicas":-1}`, http.StatusBadRequest, []string{"replicas", `"-1"`, "0 to 18446744073709551615"}},
		{"replicas too large", op, hdr(), `{"service":"web","replicas":10001}`, http.StatusBadRequest, []string{"replicas", `"10001"`, "max-replicas, 10000"}},
		{"unknown service", op, hdr(), `{"service":"nope","replicas":2}`, http.StatusNotFound, []string{"nope"}},
		{"unknown field", op, hdr(), `{"service":"web","replica":2}`, http.StatusBadRequest, []string{`no field "replica"`}},
		{"scale", op, hdr("Origin", u.base, "Sec-Fetch-Site", "same-origin"), scale, http.StatusOK, []string{`"replicas":"3"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := u.do(tc.cl, http.MethodPost, "/api/v1/ScaleService", tc.hdr, tc.body)
			if code != tc.code {
				t.Fatalf("%d %s; want %d", code, body, tc.code)
			}
			var e struct{ Error string }
			if json.Unmarshal([]byte(body), &e) == nil && e.Error != "" {
				body = e.Error
			}
			for _, p := range tc.parts {
				if !strings.Contains(body, p) {
					t.Errorf("answer %s lacks %q", body, p)
				}
			}
		})
	}
	got, err := u.c.Client(0).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil || got.GetSpec().GetReplicas() != 3 {
		t.Fatalf("after the UI's scale: %v, %v; want 3 replicas", got, err)
	}

	// Drain and activate a node, roll the scale back: the server's
	// answer, refusal included, reaches the page.
	agents := &uiCluster{t: t, c: u.c, agents: map[string]*testAgent{}}
	agents.startAgent("worker-1")
	id := agents.agents["worker-1"].id
	poll.Until(t, 30*time.Second, func() error {
		_, err := u.c.Client(0).GetNode(t.Context(), &shoalpb.GetNodeRequest{Node: id})
		return err
	})
	for _, tc := range []struct {
		method, body string
		code         int
		part         string
	}{
		{"UpdateNode", `{"node":"` + id + `","availability":"drain"}`, http.StatusOK, `"availability":"drain"`},
		{"UpdateNode", `{"node":"` + id + `","availability":"active"}`, http.StatusOK, `"availability":"active"`},
		{"UpdateNode", `{"node":"` + id + `","availability":"nap"}`, http.StatusBadRequest, "nap"},
		// The UI's scale left a previous spec (1 replica) to go back to.
		{"RollbackService", `{"service":"web"}`, http.StatusOK, `"state":"rolling_back"`},
		{"RollbackService", `{"service":"nope"}`, http.StatusNotFound, "nope"},
		{"RemoveService", `{"service":"web"}`, http.StatusNotFound, "the gateway makes the Control API's writes RollbackService, ScaleService, UpdateNode"},
	} {
		code, body := u.do(op, http.MethodPost, "/api/v1/"+tc.method, hdr(), tc.body)
		if code != tc.code || !strings.Contains(body, tc.part) {
			t.Errorf("%s %s: %d %s; want %d with %q", tc.method, tc.body, code, body, tc.code, tc.part)
		}
	}
}

// The Watch stream over SSE: a write's change arrives on it, and closing
// the client ends the stream on the manager (its slot is free again).
func TestUIWatchStreamFollowsWrites(t *testing.T) {
	u := startTLSUI(t)
	u.createService("web")
	op := u.client(pki.RoleOperator)
	_, token := u.session(op)

	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/api/v1/Watch?selectors=ignored", nil)
	if err != nil {
		t.Fatal(err)
	}
	// selectors is a message list: the query cannot set it.
	resp, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("Watch with selectors in the query: %d, want 400", resp.StatusCode)
	}

	events := func() (*bufio.Scanner, func()) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/api/v1/Watch", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := op.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Watch: %d", resp.StatusCode)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		return sc, func() { cancel(); resp.Body.Close() }
	}
	sc, closeStream := events()
	t.Cleanup(closeStream)
	// Read the snapshot up to snapshot_done, then write.
	readUntil := func(want string) {
		t.Helper()
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				return
			}
		}
		t.Fatalf("the stream ended (%v) before %q", sc.Err(), want)
	}
	readUntil(`"snapshot_done":true`)
	code, body := u.do(op, http.MethodPost, "/api/v1/ScaleService", http.Header{
		"Content-Type": {"application/json"}, http.CanonicalHeaderKey(webui.CSRFHeader): {token},
	}, `{"service":"web","replicas":2}`)
	if code != http.StatusOK {
		t.Fatalf("scale: %d %s", code, body)
	}
	readUntil(`"replicas":"2"`)

	// The client goes: the manager ends the stream, so the client's
	// stream slots come back (maxClientStreams of them, all usable).
	closeStream()
	poll.Until(t, 10*time.Second, func() error {
		var closers []func()
		defer func() {
			for _, c := range closers {
				c()
			}
		}()
		for range 8 {
			ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.base+"/api/v1/Watch", nil)
			resp, err := op.Do(req)
			if err != nil {
				cancel()
				return err
			}
			closers = append(closers, func() { cancel(); resp.Body.Close() })
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				return &streamRefused{resp.StatusCode, string(bytes.TrimSpace(b))}
			}
		}
		return nil
	})
}

type streamRefused struct {
	code int
	body string
}

func (e *streamRefused) Error() string { return http.StatusText(e.code) + ": " + e.body }
