package ctl

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-sched/shoal/api"
)

// addEnv adds KEY=VALUE entries to env; an entry replaces one with the same
// KEY, so the last one given wins.
func addEnv(env []string, flag string, add []string) ([]string, error) {
	var errs []error
	for _, kv := range add {
		if err := api.ValidateEnvVar(kv); err != nil {
			errs = append(errs, &api.FieldError{Field: flag, Value: kv, Err: err})
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		env = removeEnv(env, []string{k})
		env = append(env, kv)
	}
	return env, errors.Join(errs...)
}

// removeEnv drops the variables named by keys (a "KEY=VALUE" names KEY).
func removeEnv(env, keys []string) []string {
	for _, key := range keys {
		key, _, _ = strings.Cut(key, "=")
		env = slices.DeleteFunc(env, func(kv string) bool {
			k, _, _ := strings.Cut(kv, "=")
			return k == key
		})
	}
	return env
}

// addLabels sets KEY=VALUE (or KEY, for an empty value) labels.
func addLabels(labels map[string]string, flag string, add []string) (map[string]string, error) {
	var errs []error
	for _, kv := range add {
		k, v, _ := strings.Cut(kv, "=")
		if strings.TrimSpace(k) == "" {
			errs = append(errs, fieldErr(flag, kv, "empty label key; want KEY=VALUE"))
			continue
		}
		if labels == nil {
			labels = map[string]string{}
		} else {
			labels = maps.Clone(labels)
		}
		labels[k] = v
	}
	return labels, errors.Join(errs...)
}

// addChecked appends the entries that check accepts and are not there yet.
func addChecked(list []string, flag string, add []string, check func(string) error) ([]string, error) {
	var errs []error
	for _, v := range add {
		if err := check(v); err != nil {
			errs = append(errs, &api.FieldError{Field: flag, Value: v, Err: err})
			continue
		}
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list, errors.Join(errs...)
}

// removeAll drops every entry equal to one of rm.
func removeAll(list, rm []string) []string {
	return slices.DeleteFunc(list, func(v string) bool { return slices.Contains(rm, v) })
}

// addMounts parses --mount values; a mount replaces one at the same target.
func addMounts(mounts []api.Mount, flag string, add []string) ([]api.Mount, error) {
	var errs []error
	for _, text := range add {
		m, err := parseMount(text)
		if err != nil {
			errs = append(errs, &api.FieldError{Field: flag, Value: text, Err: err})
			continue
		}
		mounts = slices.DeleteFunc(mounts, func(o api.Mount) bool { return o.Target == m.Target })
		mounts = append(mounts, m)
	}
	return mounts, errors.Join(errs...)
}

// parseMount reads docker's --mount syntax, for the two types shoal has:
// type=bind|volume,source=SRC,target=DST[,readonly[=true|false]]. Aliases
// src; dst and destination; ro. The type defaults to volume, as in docker.
func parseMount(text string) (api.Mount, error) {
	m := api.Mount{Type: api.MountVolume}
	for field := range strings.SplitSeq(text, ",") {
		key, value, hasValue := strings.Cut(field, "=")
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "type":
			if value != api.MountBind && value != api.MountVolume && value != api.MountTmpfs {
				return m, fmt.Errorf("type %q: want bind, volume or tmpfs", value)
			}
			m.Type = value
		case "tmpfs-size":
			n, err := api.ParseMemory(value)
			if err != nil {
				return m, fmt.Errorf("tmpfs-size %q: %w", value, err)
			}
			m.TmpfsSize = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(value, 8, 32)
			if err != nil {
				return m, fmt.Errorf("tmpfs-mode %q: want octal permission bits like 1777", value)
			}
			m.TmpfsMode = uint32(n)
		case "source", "src":
			m.Source = value
		case "target", "dst", "destination":
			m.Target = value
		case "readonly", "ro":
			if !hasValue {
				m.ReadOnly = true
				continue
			}
			b, err := strconv.ParseBool(value)
			if err != nil {
				return m, fmt.Errorf("readonly %q: want true or false", value)
			}
			m.ReadOnly = b
		default:
			return m, fmt.Errorf("unknown key %q (use type, source, target, readonly, tmpfs-size, tmpfs-mode)", key)
		}
	}
	if m.Target == "" {
		return m, errors.New("no target= given")
	}
	if !strings.HasPrefix(m.Target, "/") {
		return m, fmt.Errorf("target %q must be an absolute path in the container", m.Target)
	}
	if m.Type == api.MountBind && !strings.HasPrefix(m.Source, "/") {
		return m, fmt.Errorf("source %q: a bind mount needs an absolute path on the node", m.Source)
	}
	return m, nil
}
