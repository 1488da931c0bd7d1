package containerd

import (
	"context"
	"fmt"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoal-sched/shoal/api"
)

// DefaultInitPath is the init --init runs as PID 1: Debian's statically
// linked tini (package tini), bind-mounted read-only into the container
// at initTarget as docker does with its docker-init.
const (
	DefaultInitPath = "/usr/bin/tini-static"
	initTarget      = "/sbin/docker-init"
)

// Labels that carry per-task settings from Create to Start and Stop.
const (
	labelLogMaxSize  = "shoal.log.max-size"
	labelLogMaxFiles = "shoal.log.max-files"
)

// containerOpts turns the task's container options into OCI spec options;
// they come after the process, user and mounts are set.
func (r *Runtime) containerOpts(t *api.Task) ([]oci.SpecOpts, error) {
	o := t.RunSpec().Container
	if o == nil {
		return nil, nil
	}
	var opts []oci.SpecOpts
	if o.Hostname != "" {
		svc := t.ServiceName
		if svc == "" {
			svc = t.RunSpec().Name
		}
		name, err := api.RenderHostname(o.Hostname, api.NewHostnameContext(t, svc, r.opts.NodeID, r.opts.NodeHostname))
		if err != nil {
			return nil, fmt.Errorf("spec.container.hostname %q: %w", o.Hostname, err)
		}
		// A hostname of its own needs a UTS namespace of its own.
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace}), oci.WithHostname(name))
	}
	if o.Init {
		init, err := r.initOpt()
		if err != nil {
			return nil, err
		}
		opts = append(opts, init)
	}
	if o.ReadOnly {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if o.TTY {
		opts = append(opts, oci.WithTTY)
	}
	if len(o.Groups) > 0 {
		opts = append(opts, oci.WithAppendAdditionalGroups(o.Groups...))
	}
	opts = append(opts, capOpts(o.CapAdd, o.CapDrop)...)
	if len(o.Sysctls) > 0 {
		opts = append(opts, withSysctls(o.Sysctls))
	}
	for _, u := range o.Ulimits {
		opts = append(opts, oci.WithRlimit(&specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: rlimitValue(u.Soft), Hard: rlimitValue(u.Hard),
		}))
	}
	return opts, nil
}

// initOpt mounts the init and makes it PID 1, the command its child.
func (r *Runtime) initOpt() (oci.SpecOpts, error) {
	path := r.opts.InitPath
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("spec.container.init: the init %s is missing on this node (Debian: apt-get install tini): %w", path, err)
	}
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = append(s.Mounts, specs.Mount{
			Type: "bind", Source: path, Destination: initTarget, Options: []string{"rbind", "ro", "rprivate"},
		})
		if s.Process != nil {
			s.Process.Args = append([]string{initTarget, "--"}, s.Process.Args...)
		}
		return nil
	}, nil
}

// capOpts applies docker's rules: cap_add ALL grants every capability but
// the dropped ones; cap_drop ALL keeps only the added ones; otherwise the
// default set plus the added minus the dropped.
func capOpts(add, drop []string) []oci.SpecOpts {
	a, d := normalizeCaps(add), normalizeCaps(drop)
	switch {
	case len(a) == 0 && len(d) == 0:
		return nil
	case slices.Contains(a, api.CapAll):
		return []oci.SpecOpts{oci.WithAllKnownCapabilities, oci.WithDroppedCapabilities(without(d, api.CapAll))}
	case slices.Contains(d, api.CapAll):
		return []oci.SpecOpts{oci.WithCapabilities(a)}
	}
	return []oci.SpecOpts{oci.WithAddedCapabilities(a), oci.WithDroppedCapabilities(d)}
}

func normalizeCaps(caps []string) []string {
	var out []string
	for _, c := range caps {
		if n, ok := api.NormalizeCapability(c); ok {
			out = append(out, n)
		}
	}
	return out
}

func without(list []string, v string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == v })
}

func withSysctls(sysctls map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		for k, v := range sysctls {
			s.Linux.Sysctl[k] = v
		}
		return nil
	}
}

// rlimitValue maps -1 (unlimited) to RLIM_INFINITY.
func rlimitValue(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64
	}
	return uint64(v)
}

// optionLabels are the container labels the options add: the user's, and
// the log limits Start reads back.
func optionLabels(o *api.ContainerOptions, labels map[string]string) {
	if o == nil {
		return
	}
	for k, v := range o.Labels {
		if _, taken := labels[k]; !taken {
			labels[k] = v
		}
	}
	if o.LogMaxSize > 0 {
		labels[labelLogMaxSize] = strconv.FormatInt(o.LogMaxSize, 10)
	}
	if o.LogMaxFiles > 0 {
		labels[labelLogMaxFiles] = strconv.FormatUint(uint64(o.LogMaxFiles), 10)
	}
}

// stopSignalLabel is the containerd stop-signal label's value for the
// spec's signal, or "" for the image's (or SIGTERM).
func stopSignalLabel(o *api.ContainerOptions) (string, error) {
	if o == nil || o.StopSignal == "" {
		return "", nil
	}
	sig, err := api.ParseSignal(o.StopSignal)
	if err != nil {
		return "", fmt.Errorf("spec.container.stop_signal %q: %w", o.StopSignal, err)
	}
	return strconv.Itoa(int(sig)), nil
}

// logLimits reads a container's log limits back from its labels.
func (r *Runtime) logLimits(labels map[string]string) (maxBytes int64, keepRotated bool) {
	maxBytes, keepRotated = r.opts.LogMaxBytes, true
	if v, err := strconv.ParseInt(labels[labelLogMaxSize], 10, 64); err == nil && v > 0 {
		maxBytes = v
	}
	if labels[labelLogMaxFiles] == "1" {
		keepRotated = false
	}
	return maxBytes, keepRotated
}

// tmpfsMount is docker's tmpfs mount: noexec, nosuid, nodev, mode 1777
// unless the mount says otherwise.
func tmpfsMount(m api.Mount) specs.Mount {
	opts := []string{"nosuid", "nodev", "noexec"}
	mode := m.TmpfsMode
	if mode == 0 {
		mode = 0o1777
	}
	opts = append(opts, fmt.Sprintf("mode=%o", mode))
	if m.TmpfsSize > 0 {
		opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsSize))
	}
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	return specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: path.Clean(m.Target), Options: opts}
}
