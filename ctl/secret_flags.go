package ctl

import (
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// secretFlags are the --secret and --config flags of `service create` and
// `update` (docker's: NAME, or source=S,target=T,uid=U,gid=G,mode=M).
type secretFlags struct {
	secrets, secretAdd, secretRm []string
	configs, configAdd, configRm []string
	withRegistryAuth             bool
}

func (f *secretFlags) register(fs *pflag.FlagSet, update bool) {
	const form = "NAME or source=NAME,target=T[,uid=U][,gid=G][,mode=0440]"
	if update {
		fs.StringArrayVar(&f.secretAdd, "secret-add", nil, "give the tasks a secret: "+form+" (repeatable)")
		fs.StringArrayVar(&f.secretRm, "secret-rm", nil, "take a secret away, by name (repeatable)")
		fs.StringArrayVar(&f.configAdd, "config-add", nil, "give the tasks a config: "+form+" (repeatable)")
		fs.StringArrayVar(&f.configRm, "config-rm", nil, "take a config away, by name (repeatable)")
	} else {
		fs.StringArrayVar(&f.secrets, "secret", nil, "give the tasks a secret, at /run/secrets/TARGET (default: NAME): "+form+" (repeatable)")
		fs.StringArrayVar(&f.configs, "config", nil, "give the tasks a config, at TARGET (default: /NAME): "+form+" (repeatable)")
	}
	fs.BoolVar(&f.withRegistryAuth, "with-registry-auth", false,
		"send the registry credential of this machine's docker config (~/.docker/config.json, or $DOCKER_CONFIG) for the image's registry to the agents that run the tasks")
}

func (f *secretFlags) applyCreate(s *api.ServiceSpec) []error {
	var errs []error
	s.Secrets, errs = appendRefs(s.Secrets, "--secret", f.secrets, errs)
	s.Configs, errs = appendRefs(s.Configs, "--config", f.configs, errs)
	return errs
}

func (f *secretFlags) applyUpdate(s *api.ServiceSpec) []error {
	var errs []error
	drop := func(names []string) func(api.SecretReference) bool {
		return func(r api.SecretReference) bool { return slices.Contains(names, r.SecretName) }
	}
	s.Secrets = slices.DeleteFunc(s.Secrets, drop(f.secretRm))
	s.Configs = slices.DeleteFunc(s.Configs, drop(f.configRm))
	s.Secrets, errs = appendRefs(s.Secrets, "--secret-add", f.secretAdd, errs)
	s.Configs, errs = appendRefs(s.Configs, "--config-add", f.configAdd, errs)
	return errs
}

// appendRefs parses each value and adds it, replacing a reference to the
// same name (as docker's --secret-add of a name already given does).
func appendRefs(refs []api.SecretReference, flag string, vals []string, errs []error) ([]api.SecretReference, []error) {
	for _, v := range vals {
		r, err := parseSecretFlag(flag, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		refs = slices.DeleteFunc(refs, func(o api.SecretReference) bool { return o.SecretName == r.SecretName })
		refs = append(refs, r)
	}
	return refs, errs
}

// parseSecretFlag reads NAME or source=S,target=T,uid=U,gid=G,mode=M.
func parseSecretFlag(flag, v string) (api.SecretReference, error) {
	var r api.SecretReference
	if !strings.Contains(v, "=") {
		r.SecretName = v
		return r, nil
	}
	for _, part := range strings.Split(v, ",") {
		key, val, _ := strings.Cut(part, "=")
		var err error
		switch key {
		case "source", "src":
			r.SecretName = val
		case "target":
			r.Target = val
		case "uid":
			r.UID, err = parseUint32(val, 10)
		case "gid":
			r.GID, err = parseUint32(val, 10)
		case "mode":
			r.Mode, err = parseUint32(val, 8)
		default:
			return r, fieldErr(flag, v, "unknown part %q: want source=NAME,target=T,uid=U,gid=G,mode=0440", part)
		}
		if err != nil {
			return r, fieldErr(flag, v, "%s %q: %v", key, val, err)
		}
	}
	if r.SecretName == "" {
		return r, fieldErr(flag, v, "no source: want source=NAME[,target=T...]")
	}
	return r, nil
}

func parseUint32(s string, base int) (uint32, error) {
	n, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, err.(*strconv.NumError).Err
	}
	return uint32(n), nil
}
