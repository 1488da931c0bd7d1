package controlapi

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// statusForwardTimeout bounds asking the leader for its view of the
// cluster; past it this manager answers with its own view.
const statusForwardTimeout = 2 * time.Second

// ClusterStatus describes the Raft cluster. Without stale it is the
// leader's view; when there is no leader (or it cannot be reached) this
// manager answers with its own view, because that is exactly when an
// operator needs to see which managers are reachable.
func (s *Server) ClusterStatus(ctx context.Context, req *shoalpb.ClusterStatusRequest) (*shoalpb.ClusterStatusResponse, error) {
	leaderID, _ := s.raft.Leader()
	if req.GetStale() || leaderID == "" || leaderID == s.id || forwardedBy(ctx) != "" {
		return s.clusterStatus(ctx)
	}
	fctx, cancel := context.WithTimeout(ctx, statusForwardTimeout)
	defer cancel()
	resp, err := forward(fctx, s, leaderID, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ClusterStatusResponse, error) {
		return c.ClusterStatus(ctx, req)
	})
	if err == nil {
		return resp, nil
	}
	s.log.Debug("leader did not answer cluster status, answering locally", "leader_id", leaderID, "err", err)
	return s.clusterStatus(ctx)
}

func (s *Server) clusterStatus(ctx context.Context) (*shoalpb.ClusterStatusResponse, error) {
	st := s.raft.Stats()
	leaderID, _ := s.raft.Leader()
	members, err := s.raft.Members()
	if err != nil {
		return nil, toStatus(err)
	}
	v := s.state().Read()
	reach := s.reachability(ctx)
	leader, _ := v.Manager(leaderID)
	out := &shoalpb.ClusterStatusResponse{
		ClusterId: v.Cluster().ID, LeaderId: leaderID, LeaderAddr: leader.Addr,
		Term: st.Term, LastIndex: st.LastIndex, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		AnsweredBy: s.id, Settings: s.settingsOf(v),
	}
	for _, m := range members {
		rec, _ := v.Manager(m.ID)
		out.Managers = append(out.Managers, &shoalpb.Manager{
			Id: m.ID, RaftAddr: m.RaftAddr, Addr: rec.Addr, GossipAddr: rec.GossipAddr,
			RaftState: raftState(m.ID, s.id, leaderID, st.State, reach[m.ID]),
			Voter:     m.Voter, Reachable: reach[m.ID],
		})
	}
	return out, nil
}

// raftState is what one manager knows of another's Raft role: its own
// exactly, the leader's, and "follower" for a reachable other member.
func raftState(id, self, leader, selfState string, reachable bool) string {
	switch {
	case id == self:
		return selfState
	case id == leader:
		return "leader"
	case reachable:
		return "follower"
	}
	return "unknown"
}

// JoinManager adds a manager to the Raft configuration as a voter and
// records its addresses. It is idempotent: a manager that restarts with a
// new address calls it again to update both.
func (s *Server) JoinManager(ctx context.Context, req *shoalpb.JoinManagerRequest) (*shoalpb.JoinManagerResponse, error) {
	rec := api.Manager{ID: req.GetId(), RaftAddr: req.GetRaftAddr(), Addr: req.GetAddr(), GossipAddr: req.GetGossipAddr()}
	if err := api.ValidateManager(rec); err != nil {
		return nil, toStatus(err)
	}
	if c, ok := authz.CallerFrom(ctx); ok && c.NodeID != rec.ID {
		return nil, status.Errorf(codes.PermissionDenied,
			"join manager: id %q: a manager may add only itself, and its certificate names %q", rec.ID, c.NodeID)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.JoinManagerResponse, error) {
		// A member keeps its vote or its lack of one (node demote) when
		// it asks again, say from a new address.
		add := s.raft.AddVoter
		if req.GetNonVoter() || !s.isVoter(req.GetId()) {
			add = s.raft.AddNonvoter
		}
		if err := add(ctx, req.GetId(), req.GetRaftAddr()); err != nil {
			return nil, err
		}
		// A standby that was promoted keeps its vote when it asks again.
		rec.NonVoter = !s.isVoter(req.GetId())
		resp, err := s.commit(ctx, rid, raftstore.UpsertManager{Manager: rec})
		if err != nil {
			return nil, err
		}
		s.log.Info("manager joined", "manager_id", req.GetId(), "raft_addr", req.GetRaftAddr(), "addr", req.GetAddr())
		return &shoalpb.JoinManagerResponse{Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.JoinManagerResponse, error) {
		return c.JoinManager(ctx, req)
	})
}

// isVoter reports whether member id has a vote in the Raft configuration.
func (s *Server) isVoter(id string) bool {
	members, err := s.raft.Members()
	if err != nil {
		return true
	}
	for _, m := range members {
		if m.ID == id {
			return m.Voter
		}
	}
	return true
}

// UpdateCluster changes the cluster-wide settings; a setting the request
// leaves unset keeps its value.
func (s *Server) UpdateCluster(ctx context.Context, req *shoalpb.UpdateClusterRequest) (*shoalpb.UpdateClusterResponse, error) {
	if req.MaxReplicas != nil {
		if err := api.ValidateClusterSettings(api.ClusterSettings{MaxReplicas: req.GetMaxReplicas()}); err != nil {
			return nil, toStatus(err)
		}
	}
	if req.CertExpiry != nil {
		if err := api.ValidateClusterSettings(api.ClusterSettings{CertExpiry: api.Duration(req.GetCertExpiry().AsDuration())}); err != nil {
			return nil, toStatus(err)
		}
	}
	if req.GossipKeyRotation != nil {
		if err := api.ValidateClusterSettings(api.ClusterSettings{GossipKeyRotation: api.Duration(req.GetGossipKeyRotation().AsDuration())}); err != nil {
			return nil, toStatus(err)
		}
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.UpdateClusterResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		cur := v.Cluster()
		if cur.ID == "" {
			return nil, fmt.Errorf("cluster: %w: it has no identity yet (the leader records it when it starts); retry", ErrPrecondition)
		}
		settings := cur.Settings
		var unlockKey string
		if req.Autolock != nil && req.GetAutolock() != v.Autolock().Enabled {
			var err error
			if unlockKey, _, err = s.setAutolock(ctx, req.GetAutolock()); err != nil {
				return nil, err
			}
		}
		if req.MaxReplicas == nil && req.GossipKeyRotation == nil && req.CertExpiry == nil {
			return &shoalpb.UpdateClusterResponse{Settings: s.settingsOf(s.state().Read()), Index: s.state().Read().Index(), UnlockKey: unlockKey}, nil
		}
		if req.MaxReplicas != nil {
			settings.MaxReplicas = req.GetMaxReplicas()
		}
		if req.CertExpiry != nil {
			settings.CertExpiry = api.Duration(req.GetCertExpiry().AsDuration())
		}
		if req.GossipKeyRotation != nil {
			settings.GossipKeyRotation = api.Duration(req.GetGossipKeyRotation().AsDuration())
		}
		if err := api.ValidateSettingsFor(settings, v.Services()); err != nil {
			return nil, err
		}
		resp, err := s.applier.Apply(ctx, raftstore.SetCluster{Cluster: api.ClusterInfo{ID: cur.ID}, Settings: &settings, At: now()})
		if err != nil {
			return nil, err
		}
		if got, ok := resp.Value.(api.ClusterInfo); ok {
			settings = got.Settings
		}
		s.log.Info("cluster settings changed", "max_replicas", settings.ReplicaLimit(), "cert_expiry", settings.CertLife(),
			"gossip_key_rotation", settings.KeyRotation(), "index", resp.Index)
		out := fromSettings(settings)
		out.Autolock = s.state().Read().Autolock().Enabled
		return &shoalpb.UpdateClusterResponse{Settings: out, Index: resp.Index, UnlockKey: unlockKey}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.UpdateClusterResponse, error) {
		return c.UpdateCluster(ctx, req)
	})
}

// settingsOf is the settings message of a view, autolock included.
func (s *Server) settingsOf(v *raftstore.View) *shoalpb.ClusterSettings {
	out := fromSettings(v.Cluster().Settings)
	out.Autolock = v.Autolock().Enabled
	return out
}

// fromSettings converts settings to the message, with defaults filled in.
func fromSettings(s api.ClusterSettings) *shoalpb.ClusterSettings {
	return &shoalpb.ClusterSettings{MaxReplicas: s.ReplicaLimit(), CertExpiry: durationpb.New(s.CertLife()), GossipKeyRotation: durationpb.New(s.KeyRotation())}
}
