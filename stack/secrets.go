package stack

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/shoal-sched/shoal/api"
)

// StackSecret is a secret or config the stack creates (its name STACK_KEY,
// as Swarm names it, unless the file gives one), labelled with the stack.
type StackSecret struct {
	Kind string // api.KindSecret | api.KindConfig
	Spec api.SecretSpec
}

// ExternalSecret is a secret or config the files say exists already.
type ExternalSecret struct {
	Kind string
	Name string
}

// objectName is the shoal name of the top-level secret or config key.
func (c *converter) objectName(kind, key string) string {
	objs := c.objects(kind)
	if o, ok := objs[key]; ok && o.Name != "" {
		return o.Name
	}
	return ServiceName(c.stack, key)
}

// objects are the project's top-level secrets or configs, in one shape.
func (c *converter) objects(kind string) map[string]types.FileObjectConfig {
	out := map[string]types.FileObjectConfig{}
	if kind == api.KindSecret {
		for k, v := range c.project.Secrets {
			out[k] = types.FileObjectConfig(v)
		}
		return out
	}
	for k, v := range c.project.Configs {
		out[k] = types.FileObjectConfig(v)
	}
	return out
}

// serviceSecrets sets a service's secrets and configs (short syntax: the
// key; long: source, target, uid, gid, mode). A secret's default target is
// its compose key, under /run/secrets; a config's is /KEY.
func (c *converter) serviceSecrets(s types.ServiceConfig, spec *api.ServiceSpec) []error {
	var errs []error
	for i, r := range s.Secrets {
		ref, err := c.secretRef(s.Name, fmt.Sprintf("secrets[%d]", i), api.KindSecret, types.FileReferenceConfig(r))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec.Secrets = append(spec.Secrets, ref)
	}
	for i, r := range s.Configs {
		ref, err := c.secretRef(s.Name, fmt.Sprintf("configs[%d]", i), api.KindConfig, types.FileReferenceConfig(r))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		spec.Configs = append(spec.Configs, ref)
	}
	return errs
}

func (c *converter) secretRef(svc, key, kind string, r types.FileReferenceConfig) (api.SecretReference, error) {
	ref := api.SecretReference{SecretName: c.objectName(kind, r.Source), Target: r.Target}
	if ref.Target == "" {
		ref.Target = r.Source
		if kind == api.KindConfig {
			ref.Target = "/" + r.Source
		}
	}
	for _, id := range []struct {
		name, v string
		to      *uint32
	}{{"uid", r.UID, &ref.UID}, {"gid", r.GID, &ref.GID}} {
		if id.v == "" {
			continue
		}
		n, err := strconv.ParseUint(id.v, 10, 32)
		if err != nil {
			return ref, keyError(svc, key+"."+id.name, id.v, errors.New("want a numeric id"))
		}
		*id.to = uint32(n)
	}
	if r.Mode != nil {
		if *r.Mode < 0 || *r.Mode > 0o777 {
			return ref, keyError(svc, key+".mode", fmt.Sprintf("%#o", *r.Mode), errors.New("want permission bits, at most 0777"))
		}
		ref.Mode = uint32(*r.Mode)
	}
	return ref, nil
}

// stackSecrets lists the secrets and configs the stack's services use:
// those it creates, with their data (from file, environment or content),
// and the external ones that must exist.
func (c *converter) stackSecrets(env map[string]string) (own []StackSecret, external []ExternalSecret, errs []error) {
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		used := map[string]bool{}
		for _, s := range c.project.Services {
			refs := []types.ServiceSecretConfig(s.Secrets)
			if kind == api.KindConfig {
				refs = nil
				for _, r := range s.Configs {
					refs = append(refs, types.ServiceSecretConfig(r))
				}
			}
			for _, r := range refs {
				used[r.Source] = true
			}
		}
		objs := c.objects(kind)
		for _, key := range slices.Sorted(maps.Keys(objs)) {
			if !used[key] {
				continue
			}
			o := objs[key]
			name := c.objectName(kind, key)
			if bool(o.External) {
				external = append(external, ExternalSecret{Kind: kind, Name: name})
				continue
			}
			field := kind + "s." + key
			data, err := objectData(o, env)
			if err != nil {
				errs = append(errs, &api.FieldError{Field: field, Value: name, Err: err})
				continue
			}
			spec := api.SecretSpec{Name: name, Data: data, Labels: map[string]string{}}
			maps.Copy(spec.Labels, o.Labels)
			spec.Labels[api.LabelStack] = c.stack
			if o.Driver != "" || o.TemplateDriver != "" {
				c.warn("", field+".driver", "shoal keeps %ss in its own store; the driver is ignored", kind)
			}
			if err := api.ValidateSecretSpec(kind, &spec); err != nil {
				errs = append(errs, &api.FieldError{Field: field, Value: name, Err: err})
				continue
			}
			own = append(own, StackSecret{Kind: kind, Spec: spec})
		}
	}
	return own, external, errs
}

// objectData reads what a top-level secret or config holds: its file (the
// path compose-go resolved against the working directory), the variable of
// the stack's environment it names, or (configs) its inline content.
func objectData(o types.FileObjectConfig, env map[string]string) ([]byte, error) {
	switch {
	case o.File != "":
		data, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("file: %w", err)
		}
		return data, nil
	case o.Environment != "":
		v, ok := env[o.Environment]
		if !ok {
			return nil, fmt.Errorf("environment: variable %s is not set", o.Environment)
		}
		return []byte(v), nil
	case o.Content != "":
		return []byte(o.Content), nil
	}
	return nil, errors.New("give file, environment or content (or external: true)")
}
