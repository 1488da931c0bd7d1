package controlapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// Secrets and configs share these RPCs; the request's kind says which. A
// secret's data goes in once, on create, and is never answered back.

func checkKind(kind string) error {
	if kind != api.KindSecret && kind != api.KindConfig {
		return invalidf("kind %q: want %s or %s", kind, api.KindSecret, api.KindConfig)
	}
	return nil
}

// CreateSecret validates a secret or config and commits it.
func (s *Server) CreateSecret(ctx context.Context, req *shoalpb.CreateSecretRequest) (*shoalpb.SecretWriteResponse, error) {
	kind := req.GetKind()
	if err := checkKind(kind); err != nil {
		return nil, toStatus(err)
	}
	if req.GetSpec() == nil {
		return nil, toStatus(errMissing("spec"))
	}
	spec := shoalpb.ToSecretSpec(req.GetSpec())
	if err := api.ValidateSecretSpec(kind, &spec); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.SecretWriteResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if _, done := v.Request(rid); !done && v.SecretByName(kind, spec.Name) != nil {
			return nil, fmt.Errorf("%s %q: %w; choose another name", kind, spec.Name, raftstore.ErrAlreadyExists)
		}
		t := now()
		sec := &api.Secret{ID: newID(), Kind: kind, Spec: spec, CreatedAt: t, UpdatedAt: t}
		resp, err := s.commit(ctx, rid, raftstore.CreateSecret{Secret: sec})
		if err != nil {
			return nil, err
		}
		got := written(resp.Value, func() *api.Secret { return s.state().Read().SecretByName(kind, spec.Name) })
		return &shoalpb.SecretWriteResponse{Secret: shoalpb.FromSecret(got, false), Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.SecretWriteResponse, error) {
		return c.CreateSecret(ctx, req)
	})
}

// ListSecrets returns every secret or config, without data.
func (s *Server) ListSecrets(ctx context.Context, req *shoalpb.ListSecretsRequest) (*shoalpb.ListSecretsResponse, error) {
	if err := checkKind(req.GetKind()); err != nil {
		return nil, toStatus(err)
	}
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.ListSecretsResponse, error) {
		out := &shoalpb.ListSecretsResponse{}
		for _, x := range v.Secrets(req.GetKind()) {
			out.Secrets = append(out.Secrets, shoalpb.FromSecret(x, false))
		}
		return out, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.ListSecretsResponse, error) {
		return c.ListSecrets(ctx, req)
	})
}

// GetSecret returns one secret (never its data) or config (with its data,
// as docker config inspect shows it).
func (s *Server) GetSecret(ctx context.Context, req *shoalpb.GetSecretRequest) (*shoalpb.Secret, error) {
	if err := checkKind(req.GetKind()); err != nil {
		return nil, toStatus(err)
	}
	if err := api.ValidateRef(req.GetKind(), req.GetSecret(), true); err != nil {
		return nil, toStatus(err)
	}
	return read(ctx, s, req.GetStale(), func(v *raftstore.View) (*shoalpb.Secret, error) {
		x, err := findSecret(v, req.GetKind(), req.GetSecret())
		if err != nil {
			return nil, err
		}
		return shoalpb.FromSecret(x, true), nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.Secret, error) {
		return c.GetSecret(ctx, req)
	})
}

// UpdateSecret replaces the labels of a secret or config. Its data cannot
// change: a request with other data is refused.
func (s *Server) UpdateSecret(ctx context.Context, req *shoalpb.UpdateSecretRequest) (*shoalpb.SecretWriteResponse, error) {
	kind := req.GetKind()
	if err := checkKind(kind); err != nil {
		return nil, toStatus(err)
	}
	if err := api.ValidateRef(kind, req.GetSecret(), true); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.SecretWriteResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		x, err := findSecret(v, kind, req.GetSecret())
		if err != nil {
			return nil, err
		}
		spec := req.GetSpec()
		if d := spec.GetData(); len(d) > 0 && !bytes.Equal(d, x.Spec.Data) {
			return nil, &api.FieldError{Field: "spec.data", Value: fmt.Sprintf("%d bytes", len(d)),
				Err: fmt.Errorf("the data of %s %q cannot change (only its labels can): create a new %s and move the services to it", kind, x.Spec.Name, kind)}
		}
		if n := spec.GetName(); n != "" && n != x.Spec.Name {
			return nil, &api.FieldError{Field: "spec.name", Value: n, Err: fmt.Errorf("%s %q cannot be renamed", kind, x.Spec.Name)}
		}
		resp, err := s.commit(ctx, rid, raftstore.UpdateSecret{Kind: kind, ID: x.ID, Labels: spec.GetLabels(), ExpectedVersion: req.GetExpectedVersion(), At: now()})
		if err != nil {
			return nil, err
		}
		got := written(resp.Value, func() *api.Secret { return s.state().Read().Secret(kind, x.ID) })
		return &shoalpb.SecretWriteResponse{Secret: shoalpb.FromSecret(got, false), Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.SecretWriteResponse, error) {
		return c.UpdateSecret(ctx, req)
	})
}

// RemoveSecret deletes a secret or config no service uses (the FSM refuses
// it otherwise, naming the services).
func (s *Server) RemoveSecret(ctx context.Context, req *shoalpb.RemoveSecretRequest) (*shoalpb.RemoveSecretResponse, error) {
	kind := req.GetKind()
	if err := checkKind(kind); err != nil {
		return nil, toStatus(err)
	}
	if err := api.ValidateRef(kind, req.GetSecret(), true); err != nil {
		return nil, toStatus(err)
	}
	ctx, rid, err := requestID(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return onLeader(ctx, s, func(ctx context.Context) (*shoalpb.RemoveSecretResponse, error) {
		if err := s.raft.VerifyLeader(ctx); err != nil {
			return nil, err
		}
		v := s.state().Read()
		if r, ok := v.Request(rid); ok {
			return &shoalpb.RemoveSecretResponse{Index: r.Index}, nil
		}
		x, err := findSecret(v, kind, req.GetSecret())
		if err != nil {
			return nil, err
		}
		resp, err := s.commit(ctx, rid, raftstore.RemoveSecret{Kind: kind, ID: x.ID})
		if err != nil {
			return nil, err
		}
		return &shoalpb.RemoveSecretResponse{Index: resp.Index}, nil
	}, func(ctx context.Context, c shoalpb.ControlClient) (*shoalpb.RemoveSecretResponse, error) {
		return c.RemoveSecret(ctx, req)
	})
}

// findSecret resolves ref as an exact id, a name, or a unique id prefix.
func findSecret(v *raftstore.View, kind, ref string) (*api.Secret, error) {
	if x := v.Secret(kind, ref); x != nil {
		return x, nil
	}
	if x := v.SecretByName(kind, ref); x != nil {
		return x, nil
	}
	var found []*api.Secret
	for _, x := range v.Secrets(kind) {
		if strings.HasPrefix(x.ID, ref) {
			found = append(found, x)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s %q: %w (no %s has this name, id or id prefix; see shoalctl %s ls)", kind, ref, raftstore.ErrNotFound, kind, kind)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%s %q is %w: it prefixes %d %s ids; give more of the id", kind, ref, ErrAmbiguous, len(found), kind)
}

// resolveSecretRefs fills in the ID of every secret and config a prepared
// spec refers to by name, refusing a name the cluster does not hold.
func resolveSecretRefs(v *raftstore.View, spec *api.ServiceSpec) error {
	var errs []error
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		refs := spec.Secrets
		if kind == api.KindConfig {
			refs = spec.Configs
		}
		for i := range refs {
			r := &refs[i]
			x := v.SecretByName(kind, r.SecretName)
			if x == nil {
				errs = append(errs, &api.FieldError{Field: fmt.Sprintf("spec.%ss[%d].source", kind, i), Value: r.SecretName,
					Err: fmt.Errorf("%s %q: %w (create it first: shoalctl %s create %s FILE)", kind, r.SecretName, raftstore.ErrNotFound, kind, r.SecretName)})
				continue
			}
			r.SecretID, r.SecretName = x.ID, x.Spec.Name
		}
	}
	return errors.Join(errs...)
}
