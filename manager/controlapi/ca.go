package controlapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/ca"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// maxOperatorName bounds the name an operator certificate carries.
const maxOperatorName = 64

// currentCA reads the CA on the leader after a barrier (tokens and roots
// must be the latest: a rotated token printed from a stale follower would
// be refused).
func (s *Server) currentCA(ctx context.Context) (*raftstore.View, api.ClusterCA, error) {
	if err := s.raft.VerifyLeader(ctx); err != nil {
		return nil, api.ClusterCA{}, err
	}
	v := s.state().Read()
	rec, ok := v.CA()
	if !ok {
		return nil, rec, fmt.Errorf("%w: %w: the first leader records it when it starts; retry", ErrPrecondition, ca.ErrNoCA)
	}
	return v, rec, nil
}

func joinTokens(v *raftstore.View, rec api.ClusterCA) (*shoalpb.JoinTokens, error) {
	w, m, err := ca.Tokens(rec)
	if err != nil {
		return nil, err
	}
	out := &shoalpb.JoinTokens{Worker: w.String(), Manager: m.String()}
	for _, rec := range v.Managers() {
		if rec.Addr != "" {
			out.ManagerAddrs = append(out.ManagerAddrs, rec.Addr)
		}
	}
	slices.Sort(out.ManagerAddrs)
	return out, nil
}

// GetJoinTokens returns the worker and manager join tokens.
func (s *Server) GetJoinTokens(ctx context.Context, req *shoalpb.GetJoinTokensRequest) (*shoalpb.JoinTokens, error) {
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.JoinTokens, error) {
		v, rec, err := s.currentCA(ctx)
		if err != nil {
			return nil, err
		}
		return joinTokens(v, rec)
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.JoinTokens, error) {
		return c.GetJoinTokens(ctx, req)
	})
}

// RotateJoinToken replaces one token's secret: the old token is refused
// for new joins from then on; nodes that joined with it keep their
// certificates.
func (s *Server) RotateJoinToken(ctx context.Context, req *shoalpb.RotateJoinTokenRequest) (*shoalpb.JoinTokens, error) {
	if r := req.GetRole(); r != pki.RoleWorker && r != pki.RoleManager {
		return nil, toStatus(invalidf("role %q: want worker or manager", r))
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.JoinTokens, error) {
		_, rec, err := s.currentCA(ctx)
		if err != nil {
			return nil, err
		}
		next, err := ca.RotateToken(rec, req.GetRole())
		if err != nil {
			return nil, err
		}
		// No request ID: a repeat after an uncertain commit would rotate
		// again, and the version check refuses it instead.
		resp, err := s.applier.Apply(ctx, raftstore.SetCA{CA: next, ExpectedVersion: rec.Version, At: now()})
		if err != nil {
			return nil, err
		}
		s.log.Info("join token rotated", "role", req.GetRole(), "index", resp.Index)
		return joinTokens(s.state().Read(), next)
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.JoinTokens, error) {
		return c.RotateJoinToken(ctx, req)
	})
}

// IssueOperatorCertificate signs a short-lived certificate with the
// operator role for a person's shoalctl. Any manager signs (the key is in
// its state); it reads its local CA.
func (s *Server) IssueOperatorCertificate(ctx context.Context, req *shoalpb.IssueOperatorCertificateRequest) (*shoalpb.IssueOperatorCertificateResponse, error) {
	name := req.GetName()
	if name == "" {
		name = "operator"
	}
	if len(name) > maxOperatorName || strings.IndexFunc(name, notNameRune) >= 0 {
		return nil, toStatus(invalidf("name %q: want letters, digits, '-', '_' or '.', at most %d characters", name, maxOperatorName))
	}
	rec, ok := s.state().Read().CA()
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: %w; retry", ErrPrecondition, ca.ErrNoCA))
	}
	at := now()
	cert, err := ca.Issue(rec, api.ClusterSettings{}, req.GetCsr(), pki.Identity{NodeID: name, Role: pki.RoleOperator}, pki.OperatorCertExpiry, at)
	if err != nil {
		return nil, toStatus(invalidf("%v", err))
	}
	s.log.Info("issued an operator certificate", "name", name, "not_after", at.Add(pki.OperatorCertExpiry))
	return &shoalpb.IssueOperatorCertificateResponse{
		Certificate: cert, TrustedRoots: ca.TrustedRoots(rec), NotAfter: timestamppb.New(at.Add(pki.OperatorCertExpiry)),
	}, nil
}

func notNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
}

// maxPendingShown bounds the pending IDs a rotation status lists.
const maxPendingShown = 50

// RotateRootCA starts a root rotation: a new root, cross-signed by the
// current one, signs from now on; nodes are told to renew; the leader
// drops the old root and makes new join tokens once every node has moved.
func (s *Server) RotateRootCA(ctx context.Context, req *shoalpb.RotateRootCARequest) (*shoalpb.RootCAStatus, error) {
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.RootCAStatus, error) {
		_, rec, err := s.currentCA(ctx)
		if err != nil {
			return nil, err
		}
		next, err := ca.StartRotation(rec, now())
		if errors.Is(err, ca.ErrRotating) {
			return nil, fmt.Errorf("%w: %w; follow it with shoalctl cluster ca", ErrPrecondition, err)
		}
		if err != nil {
			return nil, err
		}
		resp, err := s.applier.Apply(ctx, raftstore.SetCA{CA: next, ExpectedVersion: rec.Version, At: now()})
		if err != nil {
			return nil, err
		}
		s.log.Info("root CA rotation started", "index", resp.Index)
		return s.rootStatus(s.state().Read())
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.RootCAStatus, error) {
		return c.RotateRootCA(ctx, req)
	})
}

// GetRootCAStatus reports the root and a rotation's progress, as the
// leader has seen the nodes move.
func (s *Server) GetRootCAStatus(ctx context.Context, req *shoalpb.GetRootCAStatusRequest) (*shoalpb.RootCAStatus, error) {
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.RootCAStatus, error) {
		v, _, err := s.currentCA(ctx)
		if err != nil {
			return nil, err
		}
		return s.rootStatus(v)
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.RootCAStatus, error) {
		return c.GetRootCAStatus(ctx, req)
	})
}

func (s *Server) rootStatus(v *raftstore.View) (*shoalpb.RootCAStatus, error) {
	rec, _ := v.CA()
	root, err := pki.ParseRootCA(rec.RootCert, nil)
	if err != nil {
		return nil, err
	}
	out := &shoalpb.RootCAStatus{RootDigest: root.Digest()}
	if rec.Rotation == nil {
		return out, nil
	}
	next, err := pki.ParseRootCA(rec.Rotation.NewCert, nil)
	if err != nil {
		return nil, err
	}
	out.Rotating, out.NewRootDigest, out.StartedAt = true, next.Digest(), timestamppb.New(rec.Rotation.StartedAt)
	if s.caProgress != nil {
		p := s.caProgress(v)
		out.Renewed, out.Total = uint32(p.Renewed), uint32(p.Total)
		out.Pending = p.Pending[:min(len(p.Pending), maxPendingShown)]
	}
	return out, nil
}
