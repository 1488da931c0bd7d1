package shoalpb

import "github.com/shoal-sched/shoal/api"

// FromSecret converts a secret or config to the message. withData says
// whether its data goes along: never for a secret shown to a client, and
// only for a config when asked.
func FromSecret(s *api.Secret, withData bool) *Secret {
	if s == nil {
		return nil
	}
	out := &Secret{
		Id: s.ID, Kind: s.Kind, Version: s.Version,
		Spec:      &SecretSpec{Name: s.Spec.Name, Labels: s.Spec.Labels},
		CreatedAt: ts(s.CreatedAt), UpdatedAt: ts(s.UpdatedAt),
	}
	if withData && s.Kind == api.KindConfig {
		out.Spec.Data = s.Spec.Data
	}
	return out
}

// ToSecretSpec converts a create or update request's spec.
func ToSecretSpec(s *SecretSpec) api.SecretSpec {
	return api.SecretSpec{Name: s.GetName(), Labels: s.GetLabels(), Data: s.GetData()}
}

// ToSecret converts the message (as shown: a secret's data is absent).
func ToSecret(s *Secret) *api.Secret {
	if s == nil {
		return nil
	}
	return &api.Secret{
		ID: s.GetId(), Kind: s.GetKind(), Version: s.GetVersion(),
		Spec:      ToSecretSpec(s.GetSpec()),
		CreatedAt: fromTS(s.GetCreatedAt()), UpdatedAt: fromTS(s.GetUpdatedAt()),
	}
}

// FromSecretRefs converts a spec's references.
func FromSecretRefs(refs []api.SecretReference) []*SecretReference {
	var out []*SecretReference
	for _, r := range refs {
		out = append(out, &SecretReference{SecretId: r.SecretID, SecretName: r.SecretName, Target: r.Target, Uid: r.UID, Gid: r.GID, Mode: r.Mode})
	}
	return out
}

// ToSecretRefs converts a spec's references from the wire.
func ToSecretRefs(refs []*SecretReference) []api.SecretReference {
	var out []api.SecretReference
	for _, r := range refs {
		out = append(out, api.SecretReference{SecretID: r.GetSecretId(), SecretName: r.GetSecretName(), Target: r.GetTarget(),
			UID: r.GetUid(), GID: r.GetGid(), Mode: r.GetMode()})
	}
	return out
}

// FromRegistryAuth converts a registry credential (nil stays nil).
func FromRegistryAuth(a *api.RegistryAuth) *RegistryAuth {
	if a == nil {
		return nil
	}
	return &RegistryAuth{Registry: a.Registry, Username: a.Username, Password: a.Password}
}

// ToRegistryAuth converts a registry credential (nil stays nil).
func ToRegistryAuth(a *RegistryAuth) *api.RegistryAuth {
	if a == nil {
		return nil
	}
	return &api.RegistryAuth{Registry: a.GetRegistry(), Username: a.GetUsername(), Password: a.GetPassword()}
}
