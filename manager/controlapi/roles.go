package controlapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// A node's role follows its manager's place in the Raft configuration: a
// voter's node is a manager, a standby's (a non-voter, which follows the
// log) is a worker. Promotion and demotion change the configuration, then
// commit the manager record, from which the state derives the node's role.

// Swarm's MANAGER STATUS values.
const (
	managerLeader      = "leader"
	managerReachable   = "reachable"
	managerUnreachable = "unreachable"
)

// managerStatus is node n's MANAGER STATUS: "" for a worker.
func managerStatus(n *api.Node, leaderID string, reach map[string]bool) string {
	switch {
	case n.Role != api.RoleManager:
		return ""
	case n.ID == leaderID:
		return managerLeader
	case reach[n.ID]:
		return managerReachable
	}
	return managerUnreachable
}

// PromoteNode makes a node's standby manager a voter.
func (s *Server) PromoteNode(ctx context.Context, req *shoalpb.PromoteNodeRequest) (*shoalpb.NodeRoleResponse, error) {
	if err := api.ValidateRef("node", req.GetNode(), true); err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.NodeRoleResponse, error) {
		return s.promote(ctx, req.GetNode())
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.NodeRoleResponse, error) {
		return c.PromoteNode(ctx, req)
	})
}

// DemoteNode makes a manager node a worker: its manager stays in the
// configuration as a standby and its tasks stay where they are.
func (s *Server) DemoteNode(ctx context.Context, req *shoalpb.DemoteNodeRequest) (*shoalpb.NodeRoleResponse, error) {
	if err := api.ValidateRef("node", req.GetNode(), true); err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.NodeRoleResponse, error) {
		return s.demote(ctx, req.GetNode())
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.NodeRoleResponse, error) {
		return c.DemoteNode(ctx, req)
	})
}

// roleTarget reads node ref and its manager's Raft membership, on the
// leader after a barrier.
func (s *Server) roleTarget(ctx context.Context, ref string) (*api.Node, []raftstore.Member, int, error) {
	if err := s.raft.VerifyLeader(ctx); err != nil {
		return nil, nil, 0, err
	}
	n, err := findNode(s.state().Read(), ref)
	if err != nil {
		return nil, nil, 0, err
	}
	members, err := s.raft.Members()
	if err != nil {
		return nil, nil, 0, err
	}
	for i, m := range members {
		if m.ID == n.ID {
			return n, members, i, nil
		}
	}
	return n, members, -1, nil
}

func (s *Server) promote(ctx context.Context, ref string) (*shoalpb.NodeRoleResponse, error) {
	n, members, i, err := s.roleTarget(ctx, ref)
	if err != nil {
		return nil, err
	}
	if i < 0 {
		return nil, fmt.Errorf("node %s (%s): %w: no manager runs on its host; start shoal-manager --standby --join MANAGER there "+
			"and its agent with --manager-data-dir set to that manager's data dir, then promote it", n.ID, n.Hostname, ErrPrecondition)
	}
	rec, _ := s.state().Read().Manager(n.ID)
	if members[i].Voter && n.Role == api.RoleManager && !rec.NonVoter {
		return &shoalpb.NodeRoleResponse{Node: shoalpb.FromNode(n)}, nil
	}
	if !s.probe(ctx, rec.Addr) {
		return nil, fmt.Errorf("node %s (%s): %w: its standby manager at %q does not answer; a voter that cannot vote would weaken the quorum",
			n.ID, n.Hostname, ErrPrecondition, rec.Addr)
	}
	if err := s.raft.AddVoter(ctx, n.ID, members[i].RaftAddr); err != nil {
		return nil, err
	}
	rec.ID, rec.NonVoter = n.ID, false
	return s.commitRole(ctx, rec, "promoted")
}

func (s *Server) demote(ctx context.Context, ref string) (*shoalpb.NodeRoleResponse, error) {
	n, members, i, err := s.roleTarget(ctx, ref)
	if err != nil {
		return nil, err
	}
	if i < 0 || !members[i].Voter {
		return &shoalpb.NodeRoleResponse{Node: shoalpb.FromNode(n)}, nil
	}
	if err := s.canDemote(ctx, n, members); err != nil {
		return nil, err
	}
	if n.ID == s.id {
		// The leader does not take its own vote away: it hands over, and
		// onLeader forwards the request to the new leader.
		if err := s.handOver(ctx, members, n.ID); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("node %s: leadership handed over before its demotion: %w", n.ID, raftstore.ErrNotLeader)
	}
	if err := s.raft.DemoteVoter(ctx, n.ID); err != nil {
		return nil, err
	}
	rec, _ := s.state().Read().Manager(n.ID)
	rec.ID, rec.NonVoter = n.ID, true
	return s.commitRole(ctx, rec, "demoted")
}

// canDemote refuses to demote the last manager, or one whose loss of a
// vote would leave fewer reachable voters than the smaller cluster's
// quorum.
func (s *Server) canDemote(ctx context.Context, n *api.Node, members []raftstore.Member) error {
	voters := 0
	for _, m := range members {
		if m.Voter {
			voters++
		}
	}
	if voters == 1 {
		return fmt.Errorf("node %s (%s): %w: it is the last manager; promote another node first", n.ID, n.Hostname, ErrPrecondition)
	}
	reach := s.reachability(ctx)
	up, quorum := 0, (voters-1)/2+1
	var down []string
	for _, m := range members {
		switch {
		case !m.Voter || m.ID == n.ID:
		case reach[m.ID]:
			up++
		default:
			down = append(down, m.ID)
		}
	}
	if up < quorum {
		return fmt.Errorf("node %s (%s): %w: demoting it would break the quorum: %d of the %d other managers are reachable, %d needed (unreachable: %s); bring them back first",
			n.ID, n.Hostname, ErrPrecondition, up, voters-1, quorum, strings.Join(down, ", "))
	}
	return nil
}

// handOver transfers leadership to a reachable voter other than self.
func (s *Server) handOver(ctx context.Context, members []raftstore.Member, self string) error {
	reach := s.reachability(ctx)
	for _, m := range members {
		if m.Voter && m.ID != self && reach[m.ID] {
			return s.raft.TransferLeadership(ctx, m.ID)
		}
	}
	return fmt.Errorf("manager %s: %w: no reachable voter to hand leadership to", self, ErrPrecondition)
}

// commitRole commits the manager record after a change of the Raft
// configuration; the node's role follows it in the state.
func (s *Server) commitRole(ctx context.Context, rec api.Manager, what string) (*shoalpb.NodeRoleResponse, error) {
	resp, err := s.applier.Apply(ctx, raftstore.UpsertManager{Manager: rec})
	if err != nil {
		return nil, err
	}
	n := s.state().Read().Node(rec.ID)
	s.log.Info("node "+what, "node_id", rec.ID, "index", resp.Index)
	return &shoalpb.NodeRoleResponse{Node: shoalpb.FromNode(n), Index: resp.Index, Changed: true}, nil
}

// managerReach is the leader's id and which managers answer, probed only
// when some node is a manager.
func (s *Server) managerReach(ctx context.Context, v *raftstore.View) (string, map[string]bool) {
	for _, n := range v.Nodes() {
		if n.Role == api.RoleManager {
			leaderID, _ := s.raft.Leader()
			return leaderID, s.reachability(ctx)
		}
	}
	return "", nil
}
