package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// Server serves the NodeCA API on a manager from its local state: a
// follower signs as well as the leader, so joins and renewals need no
// Raft write.
type Server struct {
	shoalpb.UnimplementedNodeCAServer

	state   *raftstore.State
	clock   func() time.Time
	log     *slog.Logger
	self    *pki.Credentials
	tracker rotationTracker
}

// Config configures a Server.
type Config struct {
	State *raftstore.State
	// Self is this manager's credentials, counted in a rotation's
	// progress (nil: not counted).
	Self *pki.Credentials
	// Clock is the time certificates are issued at (default time.Now).
	Clock  func() time.Time
	Logger *slog.Logger
}

// NewServer returns a NodeCA server over the local state.
func NewServer(cfg Config) *Server {
	s := &Server{state: cfg.State, clock: cfg.Clock, log: cfg.Logger, self: cfg.Self}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "ca")
	return s
}

// Register adds the NodeCA service to a gRPC server.
func (s *Server) Register(g grpc.ServiceRegistrar) { shoalpb.RegisterNodeCAServer(g, s) }

// current is the CA record, or Unavailable while the cluster has none.
func (s *Server) current() (api.ClusterCA, api.ClusterSettings, error) {
	v := s.state.Read()
	rec, ok := v.CA()
	if !ok {
		return rec, api.ClusterSettings{}, status.Errorf(codes.Unavailable, "%v: the first manager records it once it leads; retry", ErrNoCA)
	}
	return rec, v.Cluster().Settings, nil
}

// GetRootCA answers anyone: the root is public, and a joining node checks
// it against its token.
func (s *Server) GetRootCA(context.Context, *shoalpb.GetRootCARequest) (*shoalpb.GetRootCAResponse, error) {
	rec, _, err := s.current()
	if err != nil {
		return nil, err
	}
	return &shoalpb.GetRootCAResponse{RootCa: rec.RootCert}, nil
}

// IssueNodeCertificate admits a new node that holds a valid token: the CA
// picks a new node ID and takes the role from the token's kind; nothing
// of the request but the CSR's public key goes into the certificate.
func (s *Server) IssueNodeCertificate(_ context.Context, req *shoalpb.IssueNodeCertificateRequest) (*shoalpb.NodeCertificate, error) {
	if r := req.GetRole(); r != "" && r != pki.RoleWorker && r != pki.RoleManager {
		return nil, status.Errorf(codes.InvalidArgument, "role %q: want worker or manager", r)
	}
	rec, settings, err := s.current()
	if err != nil {
		return nil, err
	}
	role, err := CheckToken(rec, req.GetToken(), req.GetRole())
	if err != nil {
		s.log.Warn("join refused", "err", err)
		return nil, status.Error(codes.PermissionDenied, err.Error())
	}
	id := pki.Identity{NodeID: NewNodeID(), Role: role}
	return s.issue(rec, settings, req.GetCsr(), id, "issued a certificate to a joining node")
}

// NodeCertificateStatus tells the calling node which roots to trust and
// whether to renew now.
func (s *Server) NodeCertificateStatus(ctx context.Context, req *shoalpb.NodeCertificateStatusRequest) (*shoalpb.NodeCertificateStatusResponse, error) {
	id, leaf, err := peerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	rec, _, err := s.current()
	if err != nil {
		return nil, err
	}
	if len(req.GetCertificate()) > 0 {
		if leaf, err = s.presentedLeaf(rec, id, leaf, req.GetCertificate()); err != nil {
			return nil, err
		}
	}
	renew := NeedsRenewal(rec, leaf)
	if !renew {
		s.tracker.mark(rec, id.NodeID)
	}
	return &shoalpb.NodeCertificateStatusResponse{
		Renew: renew, TrustedRoots: TrustedRoots(rec), Role: id.Role,
		ServerTime: timestamppb.New(s.clock()),
	}, nil
}

// RenewNodeCertificate signs a new certificate for the caller's node ID
// and role. The caller's certificate must still be valid: the TLS
// handshake has checked it against the current roots, an expired one
// never gets here.
func (s *Server) RenewNodeCertificate(ctx context.Context, req *shoalpb.RenewNodeCertificateRequest) (*shoalpb.NodeCertificate, error) {
	id, _, err := peerIdentity(ctx)
	if err != nil {
		return nil, err
	}
	if id.Role == pki.RoleOperator {
		return nil, status.Error(codes.PermissionDenied, "operator certificates are not renewed: get a new one with shoalctl cluster operator-cert")
	}
	rec, settings, err := s.current()
	if err != nil {
		return nil, err
	}
	return s.issue(rec, settings, req.GetCsr(), pki.Identity{NodeID: id.NodeID, Role: id.Role}, "renewed a node certificate")
}

func (s *Server) issue(rec api.ClusterCA, settings api.ClusterSettings, csr []byte, id pki.Identity, what string) (*shoalpb.NodeCertificate, error) {
	now := s.clock()
	cert, err := Issue(rec, settings, csr, id, 0, now)
	switch {
	case errors.Is(err, pki.ErrBadCertificate):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case err != nil:
		return nil, status.Errorf(codes.Internal, "sign: %v", err)
	}
	s.tracker.mark(rec, id.NodeID)
	s.log.Info(what, "node_id", id.NodeID, "role", id.Role)
	return &shoalpb.NodeCertificate{
		Certificate: cert, TrustedRoots: TrustedRoots(rec), NodeId: id.NodeID, Role: id.Role,
		ServerTime: timestamppb.New(now),
	}, nil
}

// NeedsRenewal reports whether leaf should be replaced now: a root
// rotation is running and leaf is not signed by the new key.
func NeedsRenewal(rec api.ClusterCA, leaf *x509.Certificate) bool {
	if rec.Rotation == nil {
		return false
	}
	certs, err := pki.ParseCertsPEM(rec.Rotation.NewCert)
	if err != nil {
		return false
	}
	return leaf.CheckSignatureFrom(certs[0]) != nil
}

// MaxPresentedCertificate bounds the certificate a status request carries
// (a leaf and its chain are a few KiB).
const MaxPresentedCertificate = 64 << 10

// presentedLeaf verifies the certificate a caller says it holds now: it
// must chain to the roots trusted now and be of the caller's node ID,
// role and cluster. It is public data, so it proves nothing alone; the
// connection proved who the caller is, and a node speaks only for itself.
// The connection's own certificate, the usual case (nothing renewed since
// it opened), was verified by the handshake and is not verified again.
func (s *Server) presentedLeaf(rec api.ClusterCA, caller pki.Identity, conn *x509.Certificate, certPEM []byte) (*x509.Certificate, error) {
	if len(certPEM) > MaxPresentedCertificate {
		return nil, status.Errorf(codes.InvalidArgument, "certificate: %d bytes, more than the %d allowed", len(certPEM), MaxPresentedCertificate)
	}
	if b, _ := pem.Decode(certPEM); b != nil && bytes.Equal(b.Bytes, conn.Raw) {
		return conn, nil
	}
	leaf, err := pki.VerifyPEM(certPEM, TrustedRoots(rec), s.clock())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate: %v", err)
	}
	id, err := pki.IdentityFromCert(leaf)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "certificate: %v", err)
	}
	if id.NodeID != caller.NodeID || id.Role != caller.Role || id.ClusterID != caller.ClusterID {
		return nil, status.Errorf(codes.PermissionDenied, "certificate: of %s, the caller is %s: a node asks about its own certificate only", id, caller)
	}
	return leaf, nil
}

// peerIdentity is the identity in the caller's verified certificate.
func peerIdentity(ctx context.Context) (pki.Identity, *x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 {
			leaf := info.State.VerifiedChains[0][0]
			id, err := pki.IdentityFromCert(leaf)
			if err != nil {
				return id, nil, status.Error(codes.PermissionDenied, err.Error())
			}
			return id, leaf, nil
		}
	}
	return pki.Identity{}, nil, status.Error(codes.Unauthenticated,
		"this call needs the node's certificate over TLS; a node without one joins with a token")
}
