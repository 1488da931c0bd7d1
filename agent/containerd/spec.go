package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/api"
)

const (
	// cfsPeriod is the CFS period every container gets (100 ms, as Docker).
	cfsPeriod = 100_000 // µs
	// minNanoCPUs is the smallest CPU limit: the kernel's minimum CFS
	// quota is 1 ms per 100 ms period.
	minNanoCPUs = 10_000_000
	// minMemory is the smallest memory limit accepted (Docker's floor):
	// below it runc cannot even start the container's first process.
	minMemory = 6 << 20
)

// volumeName is what a named local volume may be called.
var volumeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validateTask checks what Create needs from a task, naming the field and
// the value of the first problem.
func validateTask(t *api.Task) error {
	if t == nil {
		return errors.New("task is nil")
	}
	if err := identifiers.Validate(t.ID); err != nil {
		return fmt.Errorf("task id %q: %w", t.ID, err)
	}
	s := t.RunSpec()
	if s.Image == "" {
		return fmt.Errorf("task %s: spec.image is empty", t.ID)
	}
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("task %s: spec.env entry %q: want KEY=VALUE", t.ID, e)
		}
	}
	if s.Dir != "" && !path.IsAbs(s.Dir) {
		return fmt.Errorf("task %s: spec.dir %q: want an absolute path", t.ID, s.Dir)
	}
	if err := validateResources(s.Resources); err != nil {
		return fmt.Errorf("task %s: %w", t.ID, err)
	}
	for i, m := range s.Mounts {
		if err := validateMount(m); err != nil {
			return fmt.Errorf("task %s: spec.mounts[%d]: %w", t.ID, i, err)
		}
	}
	return nil
}

func validateResources(r api.ResourceRequirements) error {
	switch {
	case r.Limits.NanoCPUs < 0:
		return fmt.Errorf("resources.limits.nano_cpus %d: must not be negative", r.Limits.NanoCPUs)
	case r.Limits.NanoCPUs > 0 && r.Limits.NanoCPUs < minNanoCPUs:
		return fmt.Errorf("resources.limits.nano_cpus %d: the smallest CPU limit is 0.01 CPU (%d)", r.Limits.NanoCPUs, minNanoCPUs)
	case r.Reservations.NanoCPUs < 0:
		return fmt.Errorf("resources.reservations.nano_cpus %d: must not be negative", r.Reservations.NanoCPUs)
	case r.Limits.MemoryBytes < 0:
		return fmt.Errorf("resources.limits.memory_bytes %d: must not be negative", r.Limits.MemoryBytes)
	case r.Limits.MemoryBytes > 0 && r.Limits.MemoryBytes < minMemory:
		return fmt.Errorf("resources.limits.memory_bytes %d: the smallest memory limit is 6 MiB (%d)", r.Limits.MemoryBytes, minMemory)
	}
	return nil
}

func validateMount(m api.Mount) error {
	if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
		return fmt.Errorf("target %q: want an absolute path other than /", m.Target)
	}
	switch m.Type {
	case "bind":
		if !filepath.IsAbs(m.Source) {
			return fmt.Errorf("bind source %q: want an absolute path on the host", m.Source)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("bind source %q: %w", m.Source, err)
		}
	case "volume":
		if !volumeName.MatchString(m.Source) {
			return fmt.Errorf("volume name %q: want letters, digits, '_', '.', '-'", m.Source)
		}
	case api.MountTmpfs:
	default:
		return fmt.Errorf("type %q: want bind, volume or tmpfs", m.Type)
	}
	return nil
}

// containerLabels are the labels that let a restarted agent find the
// containers of its tasks.
func (r *Runtime) containerLabels(t *api.Task) map[string]string {
	return map[string]string{
		api.LabelTask:    t.ID,
		api.LabelService: t.ServiceID,
		api.LabelNode:    r.opts.NodeID,
		api.LabelSlot:    strconv.FormatUint(t.Slot, 10),
	}
}

// specOpts turns the task's spec into OCI spec options on top of the
// image's config.
func (r *Runtime) specOpts(ctx context.Context, img client.Image, t *api.Task, n agent.ContainerNetwork) ([]oci.SpecOpts, error) {
	s := t.RunSpec()
	args, err := processArgs(ctx, img, s)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	mounts, err := r.mounts(s.Mounts)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(args...),
		oci.WithEnv(s.Env),
	}
	opts = append(append(opts, networkOpts(n)...), oci.WithMounts(mounts))
	if s.Dir != "" {
		opts = append(opts, oci.WithProcessCwd(s.Dir))
	}
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User))
	}
	copts, err := r.containerOpts(t)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	return append(append(opts, resourceOpts(s.Resources)...), copts...), nil
}

// networkOpts joins the container to its network namespace, with its own
// hostname, hosts and resolv.conf; without one it shares the agent host's
// network (and, as with Docker's host network, its hostname and files).
func networkOpts(n agent.ContainerNetwork) []oci.SpecOpts {
	if n.NetNS == "" {
		return []oci.SpecOpts{
			oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithHostNamespace(specs.UTSNamespace),
			oci.WithHostHostsFile,
			oci.WithHostResolvconf,
		}
	}
	opts := []oci.SpecOpts{
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: n.NetNS}),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace}),
	}
	if n.Hostname != "" {
		opts = append(opts, oci.WithHostname(n.Hostname))
	}
	var files []specs.Mount
	for dst, src := range map[string]string{"/etc/resolv.conf": n.ResolvConf, "/etc/hosts": n.Hosts} {
		if src != "" {
			files = append(files, specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", "rprivate", "ro"}})
		}
	}
	return append(opts, oci.WithMounts(files))
}

// processArgs applies Docker's rules: Command replaces the entrypoint (and
// drops the image's cmd), Args replaces the cmd.
func processArgs(ctx context.Context, img client.Image, s *api.ServiceSpec) ([]string, error) {
	ispec, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read config of image %q: %w", s.Image, err)
	}
	var args []string
	switch {
	case len(s.Command) > 0:
		args = append(append(args, s.Command...), s.Args...)
	case len(s.Args) > 0:
		args = append(append(args, ispec.Config.Entrypoint...), s.Args...)
	default:
		args = append(append(args, ispec.Config.Entrypoint...), ispec.Config.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("no command: image %q has no entrypoint or cmd and spec.command is empty", s.Image)
	}
	return args, nil
}

// mounts returns the OCI mounts of the task; named volumes become
// directories under the runtime's volume root, made on first use.
func (r *Runtime) mounts(ms []api.Mount) ([]specs.Mount, error) {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		if m.Type == api.MountTmpfs {
			out = append(out, tmpfsMount(m))
			continue
		}
		src := m.Source
		if m.Type == "volume" {
			src = filepath.Join(r.opts.VolumeDir, m.Source)
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, fmt.Errorf("volume %q: %w", m.Source, err)
			}
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Type:        "bind",
			Source:      src,
			Destination: path.Clean(m.Target),
			Options:     []string{"rbind", "rprivate", mode},
		})
	}
	return out, nil
}

// resourceOpts: a CPU limit is a CFS quota per 100 ms period, a CPU
// reservation sets the shares (1024 per CPU), and a memory limit caps
// memory with no extra swap.
func resourceOpts(r api.ResourceRequirements) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if n := r.Limits.NanoCPUs; n > 0 {
		opts = append(opts, oci.WithCPUCFS(n*cfsPeriod/1e9, cfsPeriod))
	}
	if n := r.Reservations.NanoCPUs; n > 0 {
		shares := uint64(n) * 1024 / 1e9
		if shares < 2 {
			shares = 2 // the kernel's minimum
		}
		opts = append(opts, oci.WithCPUShares(shares))
	}
	if m := r.Limits.MemoryBytes; m > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(m)), oci.WithMemorySwap(m))
	}
	return opts
}
