package manager_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/pkitest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// caller is one way to dial a manager, and what the managers must answer.
type caller struct {
	name string
	opts []grpc.DialOption
	code codes.Code
	text string // in the refusal's message
}

// noCertTLS trusts the cluster's managers but presents no certificate.
func noCertTLS(creds *pki.Credentials) *tls.Config {
	cfg := creds.ClientTLS()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tls.Certificate{}, nil
	}
	return cfg
}

// foreignTLS presents a certificate of another CA (and trusts any server,
// so that only the manager's verdict counts).
func foreignTLS(t *testing.T, role string) *tls.Config {
	t.Helper()
	creds := pkitest.NewTestCA(t).Credentials("intruder", role)
	pair, err := tls.X509KeyPair(creds.CertPEM(), creds.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	// GetClientCertificate sends the certificate although the manager asks
	// for one of its own CA (Certificates would then send none).
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
}

func dial(t *testing.T, addr string, opts []grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func checkCode(t *testing.T, err error, want codes.Code, text string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if text != "" && !strings.Contains(err.Error(), text) {
		t.Fatalf("err = %v, want it to say %q", err, text)
	}
}

// TestControlAPIRefusesAllButOperators calls the control API of the leader
// and of a follower (which forwards writes) with every kind of caller: only
// an operator certificate of this cluster is served.
func TestControlAPIRefusesAllButOperators(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	leader := c.WaitLeader(10 * time.Second)
	op := c.Credentials(pki.RoleOperator)
	callers := []caller{
		{"plaintext", c.DialOptions(nil), codes.Unavailable, ""},
		{"no certificate", authz.DialOptions(noCertTLS(op)), codes.Unauthenticated, "no client certificate"},
		{"another CA", authz.DialOptions(foreignTLS(t, pki.RoleOperator)), codes.Unavailable, ""},
		{"worker", c.DialOptions(c.Credentials(pki.RoleWorker)), codes.PermissionDenied, "as role worker"},
		{"manager", c.DialOptions(c.Credentials(pki.RoleManager)), codes.PermissionDenied, "as role manager"},
		{"operator", c.DialOptions(op), codes.OK, ""},
	}
	for _, at := range []struct {
		name string
		i    int
	}{{"leader", leader}, {"follower", (leader + 1) % 3}} {
		for n, cl := range callers {
			t.Run(at.name+"/"+cl.name, func(t *testing.T) {
				ctl := shoalpb.NewControlClient(dial(t, c.Addr(at.i), cl.opts))
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				_, err := ctl.ListServices(ctx, &shoalpb.ListServicesRequest{})
				checkCode(t, err, cl.code, cl.text)
				name := fmt.Sprintf("svc-%s-%d", at.name, n)
				_, err = ctl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
					Name: name, Image: "busybox", Mode: "replicated", Replicas: 1,
				}})
				checkCode(t, err, cl.code, cl.text)
				_, err = c.Client(leader).GetService(ctx, &shoalpb.GetServiceRequest{Service: name})
				if want := map[bool]codes.Code{true: codes.OK, false: codes.NotFound}[cl.code == codes.OK]; status.Code(err) != want {
					t.Fatalf("the leader's state after the call: %v, want %s", err, want)
				}
			})
		}
	}
}

// TestForgedCallerIsIgnored: only a manager may say on whose behalf it
// calls; a worker that claims to forward an operator's call is judged as
// the worker it is.
func TestForgedCallerIsIgnored(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	ctl := c.ClientWith(0, c.Credentials(pki.RoleWorker))
	ctx := metadata.AppendToOutgoingContext(t.Context(),
		"shoal-caller-node", "local", "shoal-caller-role", pki.RoleOperator, "shoal-caller-local", "true")
	_, err := ctl.ListNodes(ctx, &shoalpb.ListNodesRequest{})
	checkCode(t, err, codes.PermissionDenied, "as role worker")
}

// TestEveryServedMethodIsAuthorized: every method the managers serve has
// an entry in the authorisation table (a method without one is refused
// to everyone, so a new RPC cannot ship without deciding who may call it).
func TestEveryServedMethodIsAuthorized(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	info := manager.ServiceInfo(c.Manager(0))
	if len(info) == 0 {
		t.Fatal("the manager serves no service")
	}
	for _, svc := range []string{"shoal.v1.Control", "shoal.v1.Dispatcher", "shoal.v1.NodeCA", "grpc.health.v1.Health"} {
		if _, ok := info[svc]; !ok {
			t.Errorf("the manager does not serve %s", svc)
		}
	}
	if missing := authz.Missing(info); len(missing) > 0 {
		t.Fatalf("methods without an authorisation entry: %v", missing)
	}
}
