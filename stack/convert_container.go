package stack

import (
	"maps"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/shoal-sched/shoal/api"
)

// containerPaths are the compose keys of the container options, for the
// list of supported attributes.
var containerPaths = []string{
	"services.*.hostname", "services.*.stop_signal", "services.*.init", "services.*.read_only",
	"services.*.tty", "services.*.cap_add", "services.*.cap_add.*", "services.*.cap_drop", "services.*.cap_drop.*",
	"services.*.sysctls", "services.*.sysctls.*", "services.*.ulimits", "services.*.ulimits.*",
	"services.*.ulimits.*.single", "services.*.ulimits.*.soft", "services.*.ulimits.*.hard",
	"services.*.tmpfs", "services.*.tmpfs.*", "services.*.group_add", "services.*.group_add.*",
	"services.*.logging", "services.*.logging.driver", "services.*.logging.options", "services.*.logging.options.*",
	"services.*.volumes.*.tmpfs", "services.*.volumes.*.tmpfs.size", "services.*.volumes.*.tmpfs.mode",
}

// container converts the compose keys docker calls container options.
// Compose's labels are the containers' labels (deploy.labels are the
// service's), as docker stack deploy has it.
func (c *converter) container(s types.ServiceConfig, spec *api.ServiceSpec) []error {
	o := &api.ContainerOptions{
		Hostname: s.Hostname, StopSignal: s.StopSignal, ReadOnly: s.ReadOnly, TTY: s.Tty,
		CapAdd: nilIfEmpty(s.CapAdd), CapDrop: nilIfEmpty(s.CapDrop), Groups: nilIfEmpty(s.GroupAdd),
	}
	if s.Init != nil {
		o.Init = *s.Init
	}
	if len(s.Sysctls) > 0 {
		o.Sysctls = maps.Clone(map[string]string(s.Sysctls))
	}
	if len(s.Labels) > 0 {
		o.Labels = maps.Clone(map[string]string(s.Labels))
	}
	for _, name := range slices.Sorted(maps.Keys(s.Ulimits)) {
		u := s.Ulimits[name]
		soft, hard := int64(u.Soft), int64(u.Hard)
		if u.Single != 0 {
			soft, hard = int64(u.Single), int64(u.Single)
		}
		o.Ulimits = append(o.Ulimits, api.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	var errs []error
	if l := s.Logging; l != nil {
		if l.Driver != "" && l.Driver != "json-file" && l.Driver != "local" {
			c.warn(s.Name, "logging.driver", "driver %q: shoal's agents keep logs in files of their own; its options max-size and max-file apply", l.Driver)
		}
		for _, k := range slices.Sorted(maps.Keys(l.Options)) {
			if err := o.SetLogOption(k, l.Options[k]); err != nil {
				errs = append(errs, keyError(s.Name, "logging.options."+k, l.Options[k], err))
			}
		}
	}
	for _, target := range s.Tmpfs {
		spec.Mounts = append(spec.Mounts, api.Mount{Type: api.MountTmpfs, Target: target})
	}
	if !o.IsZero() {
		spec.Container = o
	}
	return errs
}

// tmpfsVolume converts a volume of type tmpfs.
func tmpfsVolume(v types.ServiceVolumeConfig) api.Mount {
	m := api.Mount{Type: api.MountTmpfs, Target: v.Target, ReadOnly: v.ReadOnly}
	if v.Tmpfs != nil {
		m.TmpfsSize, m.TmpfsMode = int64(v.Tmpfs.Size), v.Tmpfs.Mode
	}
	return m
}
