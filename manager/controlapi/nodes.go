package controlapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// ListTasks returns tasks, optionally only those of one service and/or one
// node.
func (s *Server) ListTasks(ctx context.Context, req *shoalpb.ListTasksRequest) (*shoalpb.ListTasksResponse, error) {
	if err := errors.Join(api.ValidateRef("service", req.GetService(), false), api.ValidateRef("node", req.GetNode(), false)); err != nil {
		return nil, toStatus(err)
	}
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.ListTasksResponse, error) {
		tasks, err := filterTasks(v, req.GetService(), req.GetNode())
		if err != nil {
			return nil, err
		}
		tasks, next, err := pageTasks(tasks, req.GetPageSize(), req.GetPageToken())
		if err != nil {
			return nil, err
		}
		out := &shoalpb.ListTasksResponse{Tasks: make([]*shoalpb.Task, 0, len(tasks)), NextPageToken: next}
		for _, t := range tasks {
			out.Tasks = append(out.Tasks, shoalpb.FromTaskWithSpec(t, v.ServiceSpec(t.ServiceID, t.SpecVersion)))
		}
		return out, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ListTasksResponse, error) {
		return c.ListTasks(ctx, req)
	})
}

func filterTasks(v *raftstore.View, serviceRef, nodeRef string) ([]*api.Task, error) {
	var nodeID string
	if nodeRef != "" {
		n, err := findNode(v, nodeRef)
		if err != nil {
			return nil, err
		}
		nodeID = n.ID
	}
	if serviceRef == "" {
		if nodeID != "" {
			return v.TasksByNode(nodeID), nil
		}
		return v.Tasks(), nil
	}
	svc, err := findService(v, serviceRef)
	if err != nil {
		return nil, err
	}
	tasks := v.TasksByService(svc.ID)
	if nodeID == "" {
		return tasks, nil
	}
	var out []*api.Task
	for _, t := range tasks {
		if t.NodeID == nodeID {
			out = append(out, t)
		}
	}
	return out, nil
}

// ListNodes returns every node with the resources its active tasks reserve.
func (s *Server) ListNodes(ctx context.Context, req *shoalpb.ListNodesRequest) (*shoalpb.ListNodesResponse, error) {
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.ListNodesResponse, error) {
		nodes, next, err := pageByName(v.Nodes(), nodeKey, req.GetPageSize(), req.GetPageToken(), "ListNodes")
		if err != nil {
			return nil, err
		}
		out := &shoalpb.ListNodesResponse{NextPageToken: next}
		leaderID, reach := s.managerReach(ctx, v)
		for _, n := range nodes {
			reserved, count := nodeLoad(v, v.TasksByNode(n.ID))
			out.Nodes = append(out.Nodes, &shoalpb.NodeSummary{
				Node: shoalpb.FromNode(n), Reserved: shoalpb.FromResources(reserved), Tasks: count,
				ManagerStatus: managerStatus(n, leaderID, reach),
			})
		}
		return out, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ListNodesResponse, error) {
		return c.ListNodes(ctx, req)
	})
}

// nodeLoad sums the reservations of the tasks that hold a node's resources
// (each by its spec version in v).
func nodeLoad(v *raftstore.View, tasks []*api.Task) (api.Resources, uint64) {
	var sum api.Resources
	var n uint64
	for _, t := range tasks {
		if !t.Status.State.Active() {
			continue
		}
		if spec := v.ServiceSpec(t.ServiceID, t.SpecVersion); spec != nil {
			sum = sum.Add(spec.Resources.Reservations)
		}
		n++
	}
	return sum, n
}

// GetNode returns one node by id, id prefix or hostname.
func (s *Server) GetNode(ctx context.Context, req *shoalpb.GetNodeRequest) (*shoalpb.Node, error) {
	if err := api.ValidateRef("node", req.GetNode(), true); err != nil {
		return nil, toStatus(err)
	}
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.Node, error) {
		n, err := findNode(v, req.GetNode())
		if err != nil {
			return nil, err
		}
		return shoalpb.FromNode(n), nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.Node, error) {
		return c.GetNode(ctx, req)
	})
}

// UpdateNode changes a node's availability and labels.
func (s *Server) UpdateNode(ctx context.Context, req *shoalpb.UpdateNodeRequest) (*shoalpb.Node, error) {
	if err := api.ValidateRef("node", req.GetNode(), true); err != nil {
		return nil, toStatus(err)
	}
	if err := api.ValidateNodeUpdate(req.GetAvailability(), req.GetLabelAdd(), req.GetLabelRm()); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.Node, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok {
			return shoalpb.FromNode(written(r.Value, func() *api.Node {
				n, _ := findNode(v, req.GetNode())
				return n
			})), nil
		}
		n, err := findNode(v, req.GetNode())
		if err != nil {
			return nil, err
		}
		if err := api.ValidateLabels("labels", nodeLabelsAfter(n, req.GetLabelAdd(), req.GetLabelRm())); err != nil {
			return nil, err
		}
		resp, err := s.commit(ctx, rid, raftstore.UpdateNode{
			ID: n.ID, Availability: api.NodeAvailability(req.GetAvailability()),
			LabelAdd: req.GetLabelAdd(), LabelRm: req.GetLabelRm(), At: now(),
		})
		if err != nil {
			return nil, err
		}
		return shoalpb.FromNode(written(resp.Value, func() *api.Node { return s.state().Read().Node(n.ID) })), nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.Node, error) {
		return c.UpdateNode(ctx, req)
	})
}

// RemoveNode forgets a node. A node that is not down is refused unless
// force is set: its agent would otherwise keep running tasks the cluster
// no longer knows about.
func (s *Server) RemoveNode(ctx context.Context, req *shoalpb.RemoveNodeRequest) (*shoalpb.RemoveNodeResponse, error) {
	if err := api.ValidateRef("node", req.GetNode(), true); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.RemoveNodeResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok {
			// Removed by an earlier attempt: the node is gone now.
			return &shoalpb.RemoveNodeResponse{Index: r.Index}, nil
		}
		n, err := findNode(v, req.GetNode())
		if err != nil {
			return nil, err
		}
		if n.Status != api.NodeDown && !req.GetForce() {
			return nil, fmt.Errorf("node %s (%s) is %s: %w: only a down node can be removed; stop its agent first or use --force",
				n.ID, n.Hostname, n.Status, ErrPrecondition)
		}
		resp, err := s.commit(ctx, rid, raftstore.RemoveNode{ID: n.ID, At: now()})
		if err != nil {
			return nil, err
		}
		return &shoalpb.RemoveNodeResponse{Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.RemoveNodeResponse, error) {
		return c.RemoveNode(ctx, req)
	})
}
