package webui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// writes are the Control writes the UI makes, one to one under their
// gRPC names, as POST /api/v1/<Method> with a JSON object of the
// request's fields. Whether a caller may make one is the authorisation
// table's answer (authz.Allows, the rule the gRPC guard enforces too):
// the gateway has no rules of its own.
var writes = map[string]rpc{
	"ScaleService":    unaryCall(shoalpb.Control_ScaleService_FullMethodName, shoalpb.ControlClient.ScaleService),
	"UpdateNode":      unaryCall(shoalpb.Control_UpdateNode_FullMethodName, shoalpb.ControlClient.UpdateNode),
	"RollbackService": unaryCall(shoalpb.Control_RollbackService_FullMethodName, shoalpb.ControlClient.RollbackService),
}

const (
	// CSRFHeader carries the token of GET /api/session on every write. A
	// page of another site can neither read the token (the session has
	// no CORS) nor set the header on a form post.
	CSRFHeader = "X-Shoal-Csrf"
	// maxWriteBody bounds a write's JSON body.
	maxWriteBody = 64 << 10
)

// ErrCSRF is wrapped by the refusal of a write that may come from
// another site.
var ErrCSRF = errors.New("cross-site write refused")

func newCSRFKey() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics instead)
	return b
}

// csrfToken is the token of caller c: bound to its identity, so a token
// read by one browser is no use with another's certificate, and to this
// server's key, so it ends with the process.
func (s *Server) csrfToken(c authz.Caller) string {
	mac := hmac.New(sha256.New, s.csrfKey)
	fmt.Fprintf(mac, "%s\x00%s\x00%s", c.ClusterID, c.Role, c.NodeID)
	return hex.EncodeToString(mac.Sum(nil))
}

// session is what the page learns of its caller: the role the table
// judges it by, the writes that role may make, and the token its writes
// must carry.
type session struct {
	Role      string   `json:"role"`
	Caller    string   `json:"caller"`
	Writes    []string `json:"writes"`
	CSRFToken string   `json:"csrf_token"`
}

func (s *Server) serveSession(w http.ResponseWriter, r *http.Request) {
	c, err := caller(r)
	if err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	out := session{Role: c.Role, Caller: c.String(), Writes: []string{}, CSRFToken: s.csrfToken(c)}
	for name, m := range writes {
		if authz.Allows(m.fullName, c.Role) {
			out.Writes = append(out.Writes, name)
		}
	}
	slices.Sort(out.Writes)
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("method")
	m, ok := writes[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: no write %q: the gateway makes the Control API's writes %s", ErrRequest, name, names(writes)))
		return
	}
	c, err := caller(r)
	if err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	if !authz.Allows(m.fullName, c.Role) {
		writeError(w, http.StatusForbidden, fmt.Errorf(
			"%w: %s needs role %s; this browser is %s: open the UI served with --ui-tls with an operator certificate (shoalctl cluster operator-cert)",
			authz.ErrRole, name, strings.Join(authz.Allowed(m.fullName), " or "), c))
		return
	}
	if err := s.sameOrigin(r, c); err != nil {
		writeError(w, http.StatusForbidden, err)
		return
	}
	req := m.request()
	q, err := bodyValues(w, r)
	if err == nil {
		err = fillRequest(req, q)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("web UI write", "method", name, "caller", c.String(), "remote", r.RemoteAddr)
	s.unary(authz.ForwardContext(authz.WithCaller(r.Context(), c)), w, m, req)
}

// sameOrigin refuses a write a browser sends from another site: its
// Sec-Fetch-Site or Origin says so, or it lacks the session's token.
func (s *Server) sameOrigin(r *http.Request, c authz.Caller) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return fmt.Errorf("%w: Sec-Fetch-Site is %q; a write must come from the UI's own page (same-origin)", ErrCSRF, site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme != scheme || u.Host != r.Host {
			return fmt.Errorf("%w: Origin is %q; a write must come from %s://%s", ErrCSRF, o, scheme, r.Host)
		}
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrfToken(c))) != 1 {
		return fmt.Errorf("%w: header %s is missing or not this UI's token (GET /api/session has this browser's)", ErrCSRF, CSRFHeader)
	}
	return nil
}

// bodyValues reads a write's JSON object as the query values fillRequest
// takes: a string, number or bool per field, or a list of strings. The
// numbers keep their text, so a bad one is reported as it was sent.
func bodyValues(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return nil, fmt.Errorf("%w: Content-Type is %q; a write's body is application/json", ErrRequest, r.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxWriteBody))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%w: body: %v (at most %d bytes of one JSON object)", ErrRequest, err, maxWriteBody)
	}
	q := url.Values{}
	for key, v := range obj {
		switch v := v.(type) {
		case string:
			q.Add(key, v)
		case json.Number:
			q.Add(key, v.String())
		case bool:
			q.Add(key, fmt.Sprint(v))
		case []any:
			for _, e := range v {
				str, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("%w: field %s: a list takes strings, not %v", ErrRequest, key, e)
				}
				q.Add(key, str)
			}
		default:
			return nil, fmt.Errorf("%w: field %s: %v is not a string, number, bool or list of strings", ErrRequest, key, v)
		}
	}
	return q, nil
}

func names(m map[string]rpc) string {
	var out []string
	for name := range m {
		out = append(out, name)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
