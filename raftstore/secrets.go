package raftstore

import (
	"fmt"
	"maps"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// Secrets and configs are one kind of object in two tables: the rules are
// the same (immutable data, refused removal while a service uses one), only
// what is shown of them differs, and that is the control API's business.
const (
	tableSecrets = "secrets"
	tableConfigs = "configs"
)

// Secret and config commands (the numbers are in the log format and never change).
const (
	CmdCreateSecret CommandType = 530
	CmdUpdateSecret CommandType = 531
	CmdRemoveSecret CommandType = 532
)

// CreateSecret adds a secret or a config (Secret.Kind says which). The FSM
// refuses a taken name or ID, and data over api.MaxSecretBytes.
type CreateSecret struct {
	Secret *api.Secret
}

// UpdateSecret replaces the labels of a secret or config; its data never
// changes. ExpectedVersion, when set, must be the current version.
type UpdateSecret struct {
	Kind            string
	ID              string
	Labels          map[string]string `json:",omitempty"`
	ExpectedVersion uint64            `json:",omitempty"`
	At              time.Time         `json:",omitzero"`
}

// RemoveSecret deletes a secret or config; it is refused (ErrConflict)
// while a service's spec refers to it, naming those services.
type RemoveSecret struct {
	Kind string
	ID   string
}

func (CreateSecret) commandType() CommandType { return CmdCreateSecret }
func (UpdateSecret) commandType() CommandType { return CmdUpdateSecret }
func (RemoveSecret) commandType() CommandType { return CmdRemoveSecret }

// secretTable is the table of kind, or "" for an unknown kind.
func secretTable(kind string) string {
	switch kind {
	case api.KindSecret:
		return tableSecrets
	case api.KindConfig:
		return tableConfigs
	}
	return ""
}

func (t *tx) secret(kind, id string) *api.Secret {
	tbl := secretTable(kind)
	if tbl == "" || id == "" {
		return nil
	}
	s, _ := t.first(tbl, "id", id).(*api.Secret)
	return s
}

func (t *tx) createSecret(c CreateSecret) (any, error) {
	s := c.Secret
	if s == nil {
		return nil, fmt.Errorf("secret: missing: %w", ErrInvalid)
	}
	tbl := secretTable(s.Kind)
	switch {
	case tbl == "":
		return nil, fmt.Errorf("secret %q: kind %q: want %s or %s: %w", s.Spec.Name, s.Kind, api.KindSecret, api.KindConfig, ErrInvalid)
	case s.ID == "":
		return nil, fmt.Errorf("%s %q: id: empty: %w", s.Kind, s.Spec.Name, ErrInvalid)
	}
	if err := api.ValidateSecretSpec(s.Kind, &s.Spec); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", s.Kind, err, ErrInvalid)
	}
	if t.secret(s.Kind, s.ID) != nil {
		return nil, fmt.Errorf("%s id %q: %w", s.Kind, s.ID, ErrAlreadyExists)
	}
	if t.first(tbl, "name", s.Spec.Name) != nil {
		return nil, fmt.Errorf("%s %q: %w", s.Kind, s.Spec.Name, ErrAlreadyExists)
	}
	ns := s.Clone()
	ns.Version = 1
	t.insert(tbl, ns)
	t.event(s.Kind, "create", Event{Secret: ns.Redacted()})
	return ns, nil
}

func (t *tx) updateSecret(c UpdateSecret) (any, error) {
	cur := t.secret(c.Kind, c.ID)
	if cur == nil {
		return nil, fmt.Errorf("%s id %q: %w", c.Kind, c.ID, ErrNotFound)
	}
	if c.ExpectedVersion != 0 && c.ExpectedVersion != cur.Version {
		return nil, fmt.Errorf("%s %q: at version %d, expected %d: %w", c.Kind, cur.Spec.Name, cur.Version, c.ExpectedVersion, ErrConflict)
	}
	if errs := api.ValidateSecretSpec(c.Kind, &api.SecretSpec{Name: cur.Spec.Name, Labels: c.Labels, Data: cur.Spec.Data}); errs != nil {
		return nil, fmt.Errorf("%s %q: %w: %w", c.Kind, cur.Spec.Name, errs, ErrInvalid)
	}
	ns := cur.Clone()
	ns.Spec.Labels = maps.Clone(c.Labels)
	ns.Version++
	ns.UpdatedAt = c.At
	t.insert(secretTable(c.Kind), ns)
	t.event(c.Kind, "update", Event{Secret: ns.Redacted()})
	return ns, nil
}

func (t *tx) removeSecret(c RemoveSecret) (any, error) {
	cur := t.secret(c.Kind, c.ID)
	if cur == nil {
		return nil, fmt.Errorf("%s id %q: %w", c.Kind, c.ID, ErrNotFound)
	}
	if users := t.secretUsers(cur); len(users) > 0 {
		return nil, fmt.Errorf("%s %q is in use by service %s: remove it from those services first (service update --%s-rm %s): %w",
			c.Kind, cur.Spec.Name, quoteList(users), c.Kind, cur.Spec.Name, ErrConflict)
	}
	t.remove(secretTable(c.Kind), cur)
	t.event(c.Kind, "remove", Event{Secret: cur.Redacted()})
	return cur.Redacted(), nil
}

// secretUsers names the services whose spec (or the previous spec a
// rollback would return to) refers to s.
func (t *tx) secretUsers(s *api.Secret) []string {
	var out []string
	for _, svc := range t.services() {
		if api.UsesSecret(&svc.Spec, s) || (svc.PreviousSpec != nil && api.UsesSecret(svc.PreviousSpec, s)) {
			out = append(out, svc.Spec.Name)
		}
	}
	return out
}

// checkSecretRefs refuses a spec that refers to a secret or config the
// store does not hold (the control API resolved names to IDs; a removal
// may have come in between).
func (t *tx) checkSecretRefs(spec *api.ServiceSpec) error {
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		refs := spec.Secrets
		if kind == api.KindConfig {
			refs = spec.Configs
		}
		for i, r := range refs {
			s := t.secret(kind, r.SecretID)
			if s == nil || s.Spec.Name != r.SecretName {
				return fmt.Errorf("service %q: spec.%ss[%d]: %s %q (id %q): %w", spec.Name, kind, i, kind, r.SecretName, r.SecretID, ErrNotFound)
			}
		}
	}
	return nil
}

func quoteList(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q", n)
	}
	return out
}

// Secret returns the secret (kind api.KindSecret) or config with id, or nil.
func (v *View) Secret(kind, id string) *api.Secret {
	tbl := secretTable(kind)
	if tbl == "" || id == "" {
		return nil
	}
	s, _ := v.first(tbl, "id", id).(*api.Secret)
	return s
}

// SecretByName returns the secret or config of kind named name, or nil.
func (v *View) SecretByName(kind, name string) *api.Secret {
	tbl := secretTable(kind)
	if tbl == "" || name == "" {
		return nil
	}
	s, _ := v.first(tbl, "name", name).(*api.Secret)
	return s
}

// Secrets returns every secret or config of kind, sorted by name.
func (v *View) Secrets(kind string) []*api.Secret {
	tbl := secretTable(kind)
	if tbl == "" {
		return nil
	}
	return collect[*api.Secret](v.get(tbl, "name"))
}
