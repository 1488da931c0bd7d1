package controlapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// maxScaleRetries bounds how often a scale is retried when the service
// changed between reading it and committing the new replica count.
const maxScaleRetries = 3

// read answers a read: from the local state when stale is set, otherwise
// on the leader after it has confirmed its leadership and applied all
// committed entries (so a client never reads something older than a write
// it saw acknowledged).
func read[T any](ctx context.Context, s *Server, stale bool,
	f func(*raftstore.View) (T, error),
	remote func(context.Context, shoalpb.ControlClient) (T, error),
) (T, error) {
	if stale {
		v, err := f(s.state().Read())
		return v, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (T, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			var zero T
			return zero, err
		}
		return f(s.state().Read())
	}, remote)
}

// CreateService validates a spec and commits a new service.
func (s *Server) CreateService(ctx context.Context, req *shoalpb.CreateServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	spec, err := readSpec(req.GetSpec())
	if err == nil {
		err = prepareSpec(spec)
	}
	if err == nil {
		err = api.ValidateRegistryAuth(shoalpb.ToRegistryAuth(req.GetRegistryAuth()))
	}
	if err != nil {
		return nil, toStatus(err)
	}
	remote := func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ServiceWriteResponse, error) {
		return c.CreateService(ctx, req)
	}
	if req.GetDryRun() {
		return read(ctx, s, false, func(v *raftstore.View) (*shoalpb.ServiceWriteResponse, error) {
			if v.ServiceByName(spec.Name) != nil {
				return nil, serviceExists(spec.Name)
			}
			if err := checkInCluster(v, spec, nil); err != nil {
				return nil, err
			}
			return &shoalpb.ServiceWriteResponse{Plan: planCreate(v, spec)}, nil
		}, remote)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.ServiceWriteResponse, error) {
		// A retry of a request that committed is answered by the FSM; the
		// cluster's limits were checked on its first attempt.
		if _, done := s.state().Read().Request(rid); !done {
			if err := s.checkFresh(ctx, func(v *raftstore.View) error { return checkInCluster(v, spec, nil) }); err != nil {
				return nil, err
			}
			if err := s.pinImage(ctx, spec, nil, req.GetNoResolveImage()); err != nil {
				return nil, err
			}
		}
		return s.createService(ctx, rid, spec, shoalpb.ToRegistryAuth(req.GetRegistryAuth()))
	}, remote)
}

// createService needs no fresh read: if an earlier attempt of the request
// committed, the FSM answers this one with that attempt's service (its id,
// not the one picked here).
func (s *Server) createService(ctx context.Context, rid string, spec *api.ServiceSpec, auth *api.RegistryAuth) (*shoalpb.ServiceWriteResponse, error) {
	t := now()
	svc := &api.Service{ID: newID(), Spec: *spec, SpecVersion: 1, CreatedAt: t, UpdatedAt: t, RegistryAuth: auth}
	resp, err := s.commit(ctx, rid, raftstore.CreateService{Service: svc})
	if err != nil {
		return nil, err
	}
	got := written(resp.Value, func() *api.Service { return s.state().Read().ServiceByName(spec.Name) })
	return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(got), Index: resp.Index}, nil
}

// UpdateService replaces a service's spec.
func (s *Server) UpdateService(ctx context.Context, req *shoalpb.UpdateServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	if err := api.ValidateRef("service", req.GetService(), true); err != nil {
		return nil, toStatus(err)
	}
	if _, err := readSpec(req.GetSpec()); err != nil {
		return nil, toStatus(err)
	}
	if err := api.ValidateRegistryAuth(shoalpb.ToRegistryAuth(req.GetRegistryAuth())); err != nil {
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
		if r, ok := v.Request(rid); ok && !req.GetDryRun() {
			return serviceAnswer(v, r, req.GetService()), nil
		}
		svc, err := findService(v, req.GetService())
		if err != nil {
			return nil, err
		}
		spec := shoalpb.ToServiceSpec(req.GetSpec())
		if err := checkUpdate(v, svc, spec); err != nil {
			return nil, err
		}
		if req.GetDryRun() {
			return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(svc), Plan: planUpdate(v, svc, spec)}, nil
		}
		if err := s.pinImage(ctx, spec, &svc.Spec, req.GetNoResolveImage()); err != nil {
			return nil, err
		}
		return s.updateService(ctx, rid, raftstore.UpdateService{ID: svc.ID, Spec: *spec, ExpectedVersion: req.GetExpectedVersion(),
			RegistryAuth: shoalpb.ToRegistryAuth(req.GetRegistryAuth())})
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ServiceWriteResponse, error) {
		return c.UpdateService(ctx, req)
	})
}

// serviceAnswer answers again a service write that the state remembers as
// applied (a retry of a request that committed before its answer was lost).
func serviceAnswer(v *raftstore.View, r raftstore.Response, ref string) *shoalpb.ServiceWriteResponse {
	svc := written(r.Value, func() *api.Service {
		svc, _ := findService(v, ref)
		return svc
	})
	return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(svc), Index: r.Index}
}

// checkUpdate fills in and validates the new spec of svc against the
// state v. The name and mode of a service are fixed at creation.
func checkUpdate(v *raftstore.View, svc *api.Service, spec *api.ServiceSpec) error {
	if spec.Name == "" {
		spec.Name = svc.Spec.Name
	}
	if spec.Name != svc.Spec.Name {
		return invalidf("spec.name %q: a service cannot be renamed (it is %q)", spec.Name, svc.Spec.Name)
	}
	if spec.Mode == "" {
		spec.Mode = svc.Spec.Mode
	}
	if spec.Mode != svc.Spec.Mode {
		return invalidf("spec.mode %q: service %q is %s and its mode cannot change; remove and create it again",
			spec.Mode, svc.Spec.Name, svc.Spec.Mode)
	}
	if err := prepareSpec(spec); err != nil {
		return err
	}
	return checkInCluster(v, spec, svc.Spec.DependsOn)
}

func (s *Server) updateService(ctx context.Context, rid string, c raftstore.UpdateService) (*shoalpb.ServiceWriteResponse, error) {
	c.At = now()
	id := c.ID
	resp, err := s.commit(ctx, rid, c)
	if err != nil {
		return nil, err
	}
	// The leader has applied the entry when Apply returns.
	svc := written(resp.Value, func() *api.Service { return s.state().Read().Service(id) })
	return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(svc), Index: resp.Index}, nil
}

// ScaleService sets the replica count of a replicated service.
func (s *Server) ScaleService(ctx context.Context, req *shoalpb.ScaleServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	if err := api.ValidateRef("service", req.GetService(), true); err != nil {
		return nil, toStatus(err)
	}
	// The cluster's own limit is checked on the leader; no cluster allows
	// more than the ceiling, so such a count is refused here already.
	if err := api.ValidateReplicas("replicas", req.GetReplicas(), api.MaxReplicasCeiling); err != nil {
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
		var err error
		for range maxScaleRetries {
			var resp *shoalpb.ServiceWriteResponse
			resp, err = s.scaleOnce(ctx, rid, req)
			if !errors.Is(err, raftstore.ErrConflict) {
				return resp, err
			}
		}
		return nil, err
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ServiceWriteResponse, error) {
		return c.ScaleService(ctx, req)
	})
}

func (s *Server) scaleOnce(ctx context.Context, rid string, req *shoalpb.ScaleServiceRequest) (*shoalpb.ServiceWriteResponse, error) {
	v := s.state().Read()
	if r, ok := v.Request(rid); ok && !req.GetDryRun() {
		return serviceAnswer(v, r, req.GetService()), nil
	}
	svc, err := findService(v, req.GetService())
	if err != nil {
		return nil, err
	}
	if svc.Spec.Mode != api.ModeReplicated {
		return nil, invalidf("service %q is %s: only a replicated service can be scaled", svc.Spec.Name, svc.Spec.Mode)
	}
	// Only the count changes: the rest of the spec was checked when it was
	// written.
	if err := api.ValidateReplicas("replicas", req.GetReplicas(), v.Cluster().Settings.ReplicaLimit()); err != nil {
		return nil, err
	}
	spec := svc.Spec.Clone()
	spec.Replicas = req.GetReplicas()
	if req.GetDryRun() {
		return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(svc), Plan: planUpdate(v, svc, spec)}, nil
	}
	if spec.Replicas == svc.Spec.Replicas {
		return &shoalpb.ServiceWriteResponse{Service: shoalpb.FromService(svc), Index: v.Index()}, nil
	}
	return s.updateService(ctx, rid, raftstore.UpdateService{ID: svc.ID, Spec: *spec, ExpectedVersion: svc.SpecVersion})
}

// RemoveService deletes a service; its tasks are stopped and removed.
func (s *Server) RemoveService(ctx context.Context, req *shoalpb.RemoveServiceRequest) (*shoalpb.RemoveServiceResponse, error) {
	if err := api.ValidateRef("service", req.GetService(), true); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.RemoveServiceResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok {
			// Removed by an earlier attempt: the service is gone now.
			return &shoalpb.RemoveServiceResponse{Index: r.Index}, nil
		}
		svc, err := findService(v, req.GetService())
		if err != nil {
			return nil, err
		}
		resp, err := s.commit(ctx, rid, raftstore.RemoveService{ID: svc.ID, At: now()})
		if err != nil {
			return nil, err
		}
		return &shoalpb.RemoveServiceResponse{Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.RemoveServiceResponse, error) {
		return c.RemoveService(ctx, req)
	})
}

// GetService returns one service by name, id or id prefix.
func (s *Server) GetService(ctx context.Context, req *shoalpb.GetServiceRequest) (*shoalpb.Service, error) {
	if err := api.ValidateRef("service", req.GetService(), true); err != nil {
		return nil, toStatus(err)
	}
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.Service, error) {
		svc, err := findService(v, req.GetService())
		if err != nil {
			return nil, err
		}
		return shoalpb.FromService(svc), nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.Service, error) {
		return c.GetService(ctx, req)
	})
}

// ListServices returns every service with its running and desired counts.
func (s *Server) ListServices(ctx context.Context, req *shoalpb.ListServicesRequest) (*shoalpb.ListServicesResponse, error) {
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.ListServicesResponse, error) {
		svcs, next, err := pageByName(v.Services(), serviceKey, req.GetPageSize(), req.GetPageToken(), "ListServices")
		if err != nil {
			return nil, err
		}
		out := &shoalpb.ListServicesResponse{NextPageToken: next}
		for _, svc := range svcs {
			running, desired := taskCounts(svc, v.TasksByService(svc.ID))
			out.Services = append(out.Services, &shoalpb.ServiceSummary{
				Service: shoalpb.FromService(svc), Running: running, Desired: desired,
			})
		}
		return out, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ListServicesResponse, error) {
		return c.ListServices(ctx, req)
	})
}

// taskCounts returns how many of a service's tasks run and how many should:
// the replica count of a replicated service, the tasks meant to run (one
// per eligible node) of a global one.
func taskCounts(svc *api.Service, tasks []*api.Task) (running, desired uint64) {
	for _, t := range tasks {
		if t.DesiredState != api.TaskRunning {
			continue
		}
		if api.TaskUp(t, specIfCurrent(svc, t)) {
			running++
		}
		if svc.Spec.Mode == api.ModeGlobal && !t.Status.State.Terminal() {
			desired++
		}
	}
	if svc.Spec.Mode != api.ModeGlobal {
		desired = svc.Spec.Replicas
	}
	return running, desired
}

// specIfCurrent is the spec of t when it runs svc's current version, else
// nil (api.TaskUp then goes by the health the agent reports).
func specIfCurrent(svc *api.Service, t *api.Task) *api.ServiceSpec {
	if t.SpecVersion == svc.SpecVersion {
		return &svc.Spec
	}
	return nil
}

func serviceExists(name string) error {
	return fmt.Errorf("service %q: %w; choose another name or update the existing service", name, raftstore.ErrAlreadyExists)
}
