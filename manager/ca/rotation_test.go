package ca_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/pki/join"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestRootRotation: a new root cross-signed by the old one signs from the
// start of the rotation; the manager and every node that is not down renew
// when told to; the leader then drops the old root and makes new tokens.
// Connections open before stay up; old tokens and certificates of the old
// root stop working.
func TestRootRotation(t *testing.T) {
	h := newCAHarness(t, nil, api.ClusterSettings{})
	h.apply(raftstore.UpsertManager{Manager: api.Manager{ID: "m1", Addr: h.addr, RaftAddr: "127.0.0.1:1"}})
	worker, _ := h.tokens()
	var nodes []*pki.Credentials
	for i := range 2 {
		c, err := join.Obtain(t.Context(), joinOpts(h, worker, pki.RoleWorker))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, c)
		h.apply(raftstore.UpsertNode{Node: &api.Node{ID: c.Identity().NodeID, Hostname: fmt.Sprint("n", i), Status: api.NodeReady, Role: api.RoleWorker}})
	}
	// A node that is down during the rotation is not waited for.
	down := h.issueCreds(pki.Identity{NodeID: "gone", Role: pki.RoleWorker}, time.Now(), time.Hour)
	h.apply(raftstore.UpsertNode{Node: &api.Node{ID: "gone", Hostname: "gone", Status: api.NodeDown, Role: api.RoleWorker}})

	echo := echoServer(t, h.mgr)
	open, err := tls.Dial("tcp", echo, nodes[0].ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openSerial := ask(t, open)

	old := h.record()
	next, err := ca.StartRotation(old, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.apply(raftstore.SetCA{CA: next, ExpectedVersion: old.Version})
	if _, err := ca.StartRotation(h.record(), time.Now()); !errors.Is(err, ca.ErrRotating) {
		t.Fatalf("a second rotation: %v", err)
	}
	if p := h.srv.Progress(h.state.Read()); !p.Rotating || p.Total != 3 || p.Renewed != 0 {
		t.Fatalf("progress before any renewal: %+v, want 0 of 3 (manager and two ready nodes)", p)
	}
	// A node joining during the rotation gets a certificate of the new key
	// that the old root still verifies.
	during, err := join.Obtain(t.Context(), joinOpts(h, worker, pki.RoleWorker))
	if err != nil {
		t.Fatalf("join during the rotation: %v", err)
	}
	if ca.NeedsRenewal(h.record(), during.Leaf()) {
		t.Fatal("a certificate issued during the rotation is of the old key")
	}

	// The second node asks over one connection it keeps, as agents do:
	// after it renews, that connection still presents its certificate of
	// the old root, and the rotation must count the one it holds now.
	kept, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(nodes[1].ClientTLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{}, 4)
	for _, c := range append([]*pki.Credentials{h.mgr}, nodes...) {
		issuer := &join.Remote{Creds: c, Managers: func() []string { return []string{h.addr} }}
		if c == nodes[1] {
			issuer.Conn = func(string) (grpc.ClientConnInterface, error) { return kept, nil }
		}
		r := &pki.Renewer{Creds: c, Issuer: issuer, StatusInterval: 20 * time.Millisecond, RetryInterval: 20 * time.Millisecond}
		go func() { _ = r.Run(ctx); done <- struct{}{} }()
	}
	go func() { _ = h.srv.RunRotation(ctx, h.applier); done <- struct{}{} }()
	defer func() {
		cancel()
		for range 4 {
			<-done
		}
	}()

	newRoot := next.Rotation.NewCert
	poll.Until(t, 20*time.Second, func() error {
		rec := h.record()
		if rec.Rotation != nil {
			return fmt.Errorf("still rotating: %+v", h.srv.Progress(h.state.Read()))
		}
		if !bytes.Equal(rec.RootCert, newRoot) {
			return errors.New("the rotation ended on another root")
		}
		for i, c := range append([]*pki.Credentials{h.mgr}, nodes...) {
			if !bytes.Equal(c.RootsPEM(), newRoot) {
				return fmt.Errorf("credentials %d do not trust the new root alone yet", i)
			}
		}
		return nil
	})
	// Each renewed once: the node over the kept connection was not told
	// to renew again at every check for the certificate it had renewed.
	if n := h.renews.Load(); n != 3 {
		t.Errorf("%d renewals during the rotation, want 3 (the manager and two nodes, once each)", n)
	}
	for i, c := range append([]*pki.Credentials{h.mgr}, nodes...) {
		if err := c.CheckOwn(); err != nil {
			t.Errorf("credentials %d after the rotation: %v", i, err)
		}
	}
	if got := ask(t, open); got != openSerial {
		t.Fatalf("the connection open through the rotation answers %s", got)
	}
	// Old tokens name the old root: refused; the new ones work.
	if _, err := join.Obtain(t.Context(), joinOpts(h, worker, pki.RoleWorker)); !errors.Is(err, pki.ErrWrongDigest) {
		t.Fatalf("join with a token of the old root: %v", err)
	}
	newWorker, _ := h.tokens()
	if _, err := join.Obtain(t.Context(), joinOpts(h, newWorker, pki.RoleWorker)); err != nil {
		t.Fatalf("join with the new token: %v", err)
	}
	// The node that was down holds a certificate of the old root only.
	r := &pki.Renewer{Creds: down, Issuer: &join.Remote{Creds: down, Managers: func() []string { return []string{h.addr} }}}
	if err := r.RenewNow(t.Context()); err == nil {
		t.Fatal("a certificate of the dropped root was renewed")
	}
}

// TestStatusOfAPresentedCertificate: a status request may name the
// certificate the node holds now, but only one of its own that chains to
// the cluster's roots.
func TestStatusOfAPresentedCertificate(t *testing.T) {
	h := newCAHarness(t, nil, api.ClusterSettings{})
	node := h.issueCreds(pki.Identity{NodeID: "n1", Role: pki.RoleWorker}, time.Now(), time.Hour)
	other := h.issueCreds(pki.Identity{NodeID: "n2", Role: pki.RoleWorker}, time.Now(), time.Hour)
	otherRoot, _ := pki.NewRootCA("cluster-test", time.Now())
	_, csr, _ := pki.NewKeyAndCSR()
	foreign, _ := otherRoot.Issue(csr, pki.Identity{NodeID: "n1", Role: pki.RoleWorker, ClusterID: node.Identity().ClusterID}, time.Now(), time.Hour)
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(node.ClientTLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := shoalpb.NewNodeCAClient(conn)
	cases := []struct {
		name string
		cert []byte
		want codes.Code
		says string
	}{
		{"its own", node.CertPEM(), codes.OK, ""},
		{"another node's", other.CertPEM(), codes.PermissionDenied, "n2"},
		{"of another root", foreign, codes.InvalidArgument, "not signed by a root"},
		{"not PEM", []byte("junk"), codes.InvalidArgument, "no certificate in the PEM"},
		{"too large", bytes.Repeat([]byte("x"), ca.MaxPresentedCertificate+1), codes.InvalidArgument, fmt.Sprint(ca.MaxPresentedCertificate)},
	}
	for _, tc := range cases {
		_, err := c.NodeCertificateStatus(t.Context(), &shoalpb.NodeCertificateStatusRequest{Certificate: tc.cert})
		if status.Code(err) != tc.want || !strings.Contains(fmt.Sprint(err), tc.says) {
			t.Errorf("%s: err = %v, want %s saying %q", tc.name, err, tc.want, tc.says)
		}
	}
}
