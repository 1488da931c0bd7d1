// Package lab runs a shoal cluster of separate hosts on one Linux machine:
// each host is a network namespace wired to a bridge that lives in a
// namespace of its own, each agent host runs its own containerd, and a
// registry host serves a small busybox image. Nothing is added to the root
// namespace: the root namespace reaches the managers only through their unix
// sockets, so no lab address is ever dialled from outside the lab.
package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/shoal-sched/shoal/deploy/labregistry"
)

// Roles of lab hosts.
const (
	RoleManager  = "manager"
	RoleAgent    = "agent"
	RoleRegistry = "registry"
)

// Ports every host of a role listens on (each host has its own address).
const (
	ManagerPort  = 7000
	RaftPort     = 7001
	GossipPort   = 7946
	AgentPort    = 7010
	RegistryPort = 5000
	// UIPort is the managers' web UI, on each manager host's own
	// loopback (never its lab address): shoal-lab ui forwards it.
	UIPort = 8080
)

// Config is the shape of a lab.
type Config struct {
	Dir      string // state, data and logs (default /var/lib/shoal-lab)
	Prefix   string // namespace name prefix (default "shoal-lab-")
	Subnet   string // first three octets of the /24 (default "10.213.7")
	Managers int    // default 3
	Agents   int    // default 3
	BinDir   string // where shoal-manager, shoal-agent, shoalctl, shoal-lab-registry are
	// ManagersRunTasks gives every manager host its own containerd and an
	// agent that takes the manager's id: each manager host is one node of
	// role manager that runs tasks, as Swarm's managers do by default.
	ManagersRunTasks bool
}

func (c *Config) defaults() {
	if c.Dir == "" {
		c.Dir = "/var/lib/shoal-lab"
	}
	if c.Prefix == "" {
		c.Prefix = "shoal-lab-"
	}
	if c.Subnet == "" {
		c.Subnet = "10.213.7"
	}
	if c.Managers == 0 {
		c.Managers = 3
	}
	if c.Agents == 0 {
		c.Agents = 3
	}
	if c.BinDir == "" {
		c.BinDir = "bin"
	}
}

// Host is one lab host.
type Host struct {
	Name  string          `json:"name"` // m1, a1, registry
	Role  string          `json:"role"`
	NS    string          `json:"netns"`
	Veth  string          `json:"veth"` // bridge-side end of its link
	IP    string          `json:"ip"`
	Procs map[string]Proc `json:"procs,omitempty"` // manager, agent, containerd, registry
}

// Dir is the host's own directory under the lab dir.
func (h *Host) Dir(lab *Lab) string { return filepath.Join(lab.Cfg.Dir, h.Name) }

// Lab is a lab's configuration and what it has started, saved in
// Dir/lab.json after every step so `down` can undo a half-made lab.
type Lab struct {
	Cfg      Config  `json:"config"`
	BridgeNS string  `json:"bridge_netns"`
	Hosts    []*Host `json:"hosts"`
}

// ErrNotUp is returned by commands that need a running lab.
var ErrNotUp = errors.New("the lab is not up (run: make lab-up)")

// Plan returns the lab described by cfg, without making anything.
func Plan(cfg Config) *Lab {
	cfg.defaults()
	l := &Lab{Cfg: cfg, BridgeNS: cfg.Prefix + "br"}
	add := func(name, role string, octet int) {
		l.Hosts = append(l.Hosts, &Host{
			Name: name, Role: role, NS: cfg.Prefix + name, Veth: "v-" + name,
			IP: fmt.Sprintf("%s.%d", cfg.Subnet, octet), Procs: map[string]Proc{},
		})
	}
	add("registry", RoleRegistry, 2)
	for i := 1; i <= cfg.Managers; i++ {
		add(fmt.Sprintf("m%d", i), RoleManager, 10+i)
	}
	for i := 1; i <= cfg.Agents; i++ {
		add(fmt.Sprintf("a%d", i), RoleAgent, 20+i)
	}
	return l
}

func statePath(dir string) string { return filepath.Join(dir, "lab.json") }

// Load reads a lab's saved state from dir.
func Load(dir string) (*Lab, error) {
	if dir == "" {
		dir = "/var/lib/shoal-lab"
	}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotUp
	}
	if err != nil {
		return nil, err
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	for _, h := range l.Hosts {
		if h.Procs == nil {
			h.Procs = map[string]Proc{}
		}
	}
	return &l, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(l.Cfg.Dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(l.Cfg.Dir))
}

// Host returns the host named name (m1, a2, registry, …).
func (l *Lab) Host(name string) (*Host, error) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	var names []string
	for _, h := range l.Hosts {
		names = append(names, h.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("host %q: no such lab host (hosts: %v)", name, names)
}

// ByRole returns the hosts of one role, in order.
func (l *Lab) ByRole(role string) []*Host {
	var hs []*Host
	for _, h := range l.Hosts {
		if h.Role == role {
			hs = append(hs, h)
		}
	}
	return hs
}

// Sockets returns the managers' control sockets, the root namespace's only
// way into the lab.
func (l *Lab) Sockets() []string {
	var s []string
	for _, h := range l.ByRole(RoleManager) {
		s = append(s, "unix://"+filepath.Join(h.Dir(l), "control.sock"))
	}
	return s
}

// RegistryAddr is the registry host's address, as agents reach it.
func (l *Lab) RegistryAddr() string {
	for _, h := range l.ByRole(RoleRegistry) {
		return fmt.Sprintf("%s:%d", h.IP, RegistryPort)
	}
	return ""
}

// Image is the busybox image the lab's registry serves.
func (l *Lab) Image() string { return l.RegistryAddr() + "/" + labregistry.DefaultRepository }

// ManagerAddrs are the managers' gRPC addresses on the lab network, for
// clients running inside a lab host.
func (l *Lab) ManagerAddrs() []string {
	var a []string
	for _, h := range l.ByRole(RoleManager) {
		a = append(a, fmt.Sprintf("%s:%d", h.IP, ManagerPort))
	}
	return a
}
