package controlapi

import (
	"context"
	"fmt"

	"github.com/shoal-sched/shoal/internal/seal"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// UnlockCluster is answered by a locked manager before its control API
// runs (package manager); a manager that serves this API is not locked.
func (s *Server) UnlockCluster(context.Context, *shoalpb.UnlockClusterRequest) (*shoalpb.UnlockClusterResponse, error) {
	return nil, toStatus(fmt.Errorf("manager %s is not locked: %w", s.id, ErrPrecondition))
}

// GetUnlockKey shows the cluster's unlock key or, with rotate, commits a
// new one (every manager then re-wraps its data key with it).
func (s *Server) GetUnlockKey(ctx context.Context, req *shoalpb.GetUnlockKeyRequest) (*shoalpb.GetUnlockKeyResponse, error) {
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.GetUnlockKeyResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		a := s.state().Read().Autolock()
		if !a.Enabled {
			return nil, fmt.Errorf("autolock is off, there is no unlock key: %w: turn it on with shoalctl cluster update --autolock=true", ErrPrecondition)
		}
		if !req.GetRotate() {
			return &shoalpb.GetUnlockKeyResponse{UnlockKey: seal.FormatUnlockKey(a.UnlockKey)}, nil
		}
		key, index, err := s.setAutolock(ctx, true)
		if err != nil {
			return nil, err
		}
		return &shoalpb.GetUnlockKeyResponse{UnlockKey: key, Index: index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.GetUnlockKeyResponse, error) {
		return c.GetUnlockKey(ctx, req)
	})
}

// setAutolock commits autolock on (with a new unlock key, returned in its
// text form) or off, on the leader. Turning on what is on keeps the key,
// unless rotate asks (GetUnlockKey); turning off what is off does nothing.
func (s *Server) setAutolock(ctx context.Context, enabled bool) (string, uint64, error) {
	a := s.state().Read().Autolock()
	cmd := raftstore.SetAutolock{Enabled: enabled, ExpectedVersion: a.Version, At: now()}
	if enabled {
		cmd.UnlockKey = seal.NewKey()
	}
	resp, err := s.applier.Apply(ctx, cmd)
	if err != nil {
		return "", 0, err
	}
	s.log.Info("autolock changed", "autolock", enabled, "index", resp.Index)
	if !enabled {
		return "", resp.Index, nil
	}
	return seal.FormatUnlockKey(cmd.UnlockKey), resp.Index, nil
}
