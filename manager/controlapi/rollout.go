package controlapi

import (
	"context"
	"fmt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// RollbackService rolls a service back to its previous spec: the FSM makes
// the previous spec current as a new version and marks the rollout
// rolling back; the orchestrator rolls the tasks as for any update, with
// the rollback config (the request's, when it carries one).
func (s *Server) RollbackService(ctx context.Context, req *shoalpb.RollbackServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	var override *api.UpdateConfig
	if pb := req.GetRollbackConfig(); pb != nil {
		cfg, err := readRollbackConfig(pb)
		if err != nil {
			return nil, toStatus(err)
		}
		override = &cfg
	}
	return s.rolloutWrite(ctx, req.GetService(), func(svc *api.Service) (raftstore.Command, error) {
		if svc.PreviousSpec == nil {
			return nil, invalidf("service %q: no previous spec to roll back to (it was never updated)", svc.Spec.Name)
		}
		return raftstore.RollbackService{
			ID: svc.ID, ExpectedVersion: req.GetExpectedVersion(), Config: override, At: now(),
			Message: fmt.Sprintf("rollback of spec version %d requested", svc.SpecVersion),
		}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ServiceWriteResponse, error) {
		return c.RollbackService(ctx, req)
	})
}

// readRollbackConfig checks a rollback config sent with a rollback, by the
// rules of a spec's rollback_config.
func readRollbackConfig(pb *shoalpb.UpdateConfig) (api.UpdateConfig, error) {
	cfg := shoalpb.ToUpdateConfig(pb)
	err := api.PrepareRollbackConfig("rollback_config", &cfg)
	return cfg, err
}

// PromoteService lets a rollout in its canary phase go on to replace the
// other tasks.
func (s *Server) PromoteService(ctx context.Context, req *shoalpb.PromoteServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	return s.rolloutWrite(ctx, req.GetService(), func(svc *api.Service) (raftstore.Command, error) {
		st := svc.UpdateStatus
		if st == nil || st.SpecVersion != svc.SpecVersion || !st.State.Canary() {
			return nil, fmt.Errorf("service %q: rollout is %s, not in its canary phase; nothing to promote: %w",
				svc.Spec.Name, describeStatus(st, svc.SpecVersion), raftstore.ErrConflict)
		}
		next := *st
		next.State = api.UpdateUpdating
		next.Message = "canaries promoted"
		return raftstore.SetUpdateStatus{
			ID: svc.ID, SpecVersion: svc.SpecVersion, Status: next, At: now(),
			From: []api.UpdateState{api.UpdateCanary, api.UpdateAwaitingPromotion},
		}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ServiceWriteResponse, error) {
		return c.PromoteService(ctx, req)
	})
}

// rolloutWrite is the common path of the rollout calls: on the leader,
// behind a barrier, a retried request gets its first answer; otherwise
// decide makes the command from the service named by ref, and it is
// committed under the request's ID. Followers forward the call.
func (s *Server) rolloutWrite(ctx context.Context, ref string, decide func(*api.Service) (raftstore.Command, error),
	forward func(context.Context, shoalpb.ControlClient) (*shoalpb.ServiceWriteResponse, error),
) (*shoalpb.ServiceWriteResponse, error) {
	if err := api.ValidateRef("service", ref, true); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.ServiceWriteResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok {
			return serviceAnswer(v, r, ref), nil
		}
		svc, err := findService(v, ref)
		if err != nil {
			return nil, err
		}
		cmd, err := decide(svc)
		if err != nil {
			return nil, err
		}
		return s.commitServiceWrite(ctx, rid, svc.ID, cmd)
	}, forward)
}
func describeStatus(st *api.UpdateStatus, version uint64) string {
	if st == nil || st.SpecVersion != version {
		return "not running"
	}
	return string(st.State)
}

// commitServiceWrite commits a command that writes service id and answers
// with the service as written.
func (s *Server) commitServiceWrite(ctx context.Context, rid, id string, cmd raftstore.Command) (*shoalpb.ServiceWriteResponse, error) {
	resp, err := s.commit(ctx, rid, cmd)
	if err != nil {
		return nil, err
	}
	svc := written(resp.Value, func() *api.Service { return s.state().Read().Service(id) })
	return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(svc), Index: resp.Index}, nil
}
