// Package network is the agent's data plane: overlay networks across
// hosts (a bridge and a VXLAN device per network, in a namespace of their
// own), a network namespace per container, egress through a host-local
// gateway bridge, VIP load balancing and published ports with nftables,
// and an embedded DNS server in each container's namespace.
//
// One reconcile loop drives the kernel towards the desired state, the
// leader's NetworkView plus this host's sandboxes. It is level-triggered:
// it runs on every view, on every attach or release, and every Resync, and
// each pass reads what the kernel holds before it changes anything, so a
// lost update or an entry deleted by hand heals on the next pass.
package network

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/shoal-sched/shoal/api"
)

// Defaults for the zero values of Config.
const (
	DefaultResync        = 5 * time.Second
	DefaultGatewayBridge = "shoal_gw"
)

// DefaultGatewaySubnet is the host-local subnet of the gateway bridge.
var DefaultGatewaySubnet = netip.MustParsePrefix("172.31.0.0/16")

// Errors.
var (
	ErrInvalidConfig  = errors.New("invalid network config")
	ErrNoNamespace    = errors.New("no network namespace")
	ErrUnknownNetwork = errors.New("network not in the agent's network view")
	ErrBadID          = errors.New("ID not usable in a namespace or device name")
)

// Config configures a Reconciler.
type Config struct {
	// Dir holds the namespace files (bind mounts) of networks and tasks.
	Dir    string
	NodeID string
	// HostNS is the path of the agent host's network namespace; empty: the
	// agent's own.
	HostNS string
	// UnderlayIP is this host's address on the underlay: the VXLAN tunnel
	// endpoint (an Endpoint's NodeAddr). Its link gives the MTU.
	UnderlayIP    netip.Addr
	GatewaySubnet netip.Prefix
	GatewayBridge string
	// Resync is the period of the repair pass.
	Resync time.Duration
	// Resolvers are the upstream DNS servers (host:port) for names the
	// embedded DNS does not own; empty: those of /etc/resolv.conf.
	Resolvers []string
	Logger    *slog.Logger
}

// sandboxState is one attached task as the reconciler holds it.
type sandboxState struct {
	sb      Sandbox
	egress  netip.Addr // gateway-bridge address; invalid: none
	vipKey  string     // the VIP rules last written
	written bool
}

// Reconciler owns this host's data plane.
type Reconciler struct {
	cfg           Config
	log           *slog.Logger
	hostNS        netns.NsHandle
	underlay      netip.Addr
	underlayIndex int
	mtu           int
	gwSubnet      netip.Prefix
	gwAddr        netip.Addr

	// apply serialises kernel changes: one pass, attach or release at a time.
	apply sync.Mutex

	mu        sync.Mutex
	view      *api.NetworkView
	viewCh    chan struct{} // closed and replaced when the view changes
	sandboxes map[string]*sandboxState
	egressIPs map[netip.Addr]string // gateway-bridge address → task
	kick      chan struct{}
	dns       *dnsServer
	portsKey  string // the published ports last written (under apply)
	passes    int
	repairs   int
}

// New checks cfg and reads the underlay link. Run must be called for the
// repair loop.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Dir == "" || cfg.NodeID == "" {
		return nil, fmt.Errorf("%w: dir and node ID are required", ErrInvalidConfig)
	}
	if !cfg.UnderlayIP.Is4() {
		return nil, fmt.Errorf("%w: underlay IP %q: want an IPv4 address", ErrInvalidConfig, cfg.UnderlayIP)
	}
	cfg.GatewaySubnet = cmp.Or(cfg.GatewaySubnet, DefaultGatewaySubnet)
	if !cfg.GatewaySubnet.Addr().Is4() || cfg.GatewaySubnet.Bits() > 30 {
		return nil, fmt.Errorf("%w: gateway subnet %s: want IPv4 with room for hosts (at most /30)", ErrInvalidConfig, cfg.GatewaySubnet)
	}
	cfg.GatewaySubnet = cfg.GatewaySubnet.Masked()
	cfg.GatewayBridge = cmp.Or(cfg.GatewayBridge, DefaultGatewayBridge)
	cfg.Resync = cmp.Or(cfg.Resync, DefaultResync)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{
		cfg: cfg, log: cfg.Logger.With("component", "network"),
		underlay: cfg.UnderlayIP, gwSubnet: cfg.GatewaySubnet, gwAddr: cfg.GatewaySubnet.Addr().Next(),
		viewCh: make(chan struct{}), sandboxes: map[string]*sandboxState{},
		egressIPs: map[netip.Addr]string{}, kick: make(chan struct{}, 1),
	}
	var err error
	if cfg.HostNS == "" {
		r.hostNS, err = netns.Get()
	} else {
		r.hostNS, err = netns.GetFromPath(cfg.HostNS)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: host netns %q: %w", ErrInvalidConfig, cfg.HostNS, err)
	}
	if err := r.readUnderlay(); err != nil {
		r.hostNS.Close()
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		r.hostNS.Close()
		return nil, fmt.Errorf("netns dir: %w", err)
	}
	r.dns = newDNSServer(r, cfg.Resolvers)
	return r, nil
}

// readUnderlay finds the link holding the underlay address: its index
// binds the VXLAN devices and its MTU sets theirs.
func (r *Reconciler) readUnderlay() error {
	h, err := netlink.NewHandleAt(r.hostNS)
	if err != nil {
		return fmt.Errorf("netlink in host netns: %w", err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == r.underlay {
			l, err := h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return fmt.Errorf("underlay link: %w", err)
			}
			r.underlayIndex, r.mtu = l.Attrs().Index, l.Attrs().MTU-vxlanHeader
			return nil
		}
	}
	return fmt.Errorf("%w: underlay IP %s is on no interface of the host namespace", ErrInvalidConfig, r.underlay)
}

// MTU is the MTU of overlay interfaces (the underlay's less VXLAN's 50).
func (r *Reconciler) MTU() int { return r.mtu }

func (r *Reconciler) netPath(netID string) string { return filepath.Join(r.cfg.Dir, "net-"+netID) }

// TaskNetNS is the path of a task's network namespace.
func (r *Reconciler) TaskNetNS(taskID string) string {
	return filepath.Join(r.cfg.Dir, "task-"+taskID)
}

func (r *Reconciler) taskPath(taskID string) string { return r.TaskNetNS(taskID) }

// SetView takes the leader's view; one older than the view held is ignored.
func (r *Reconciler) SetView(v *api.NetworkView) {
	if v == nil {
		return
	}
	r.mu.Lock()
	if r.view != nil && v.Version < r.view.Version {
		r.mu.Unlock()
		return
	}
	r.view = v
	close(r.viewCh)
	r.viewCh = make(chan struct{})
	r.mu.Unlock()
	r.dns.setView(v)
	r.poke()
}

func (r *Reconciler) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run repairs the data plane on every change and every Resync until ctx
// ends. Kernel state stays when it returns (containers keep running); see
// Shutdown.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Resync)
	defer t.Stop()
	full := true
	for {
		if err := r.reconcile(full); err != nil {
			r.log.Warn("network reconcile failed, will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			full = false
		case <-t.C:
			full = true
		}
	}
}

// Stats reports how many passes ran and how many kernel entries they
// had to repair (FDB and neighbour entries added or removed).
func (r *Reconciler) Stats() (passes, repairs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passes, r.repairs
}

// snapshot copies the view and the sandboxes.
func (r *Reconciler) snapshot() (*api.NetworkView, map[string]Sandbox) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sbs := make(map[string]Sandbox, len(r.sandboxes))
	for id, s := range r.sandboxes {
		sbs[id] = s.sb
	}
	return r.view, sbs
}

// Reconcile runs one full pass: networks, sandboxes, VIP tables,
// published ports; then it removes the namespaces of networks no sandbox
// is on.
func (r *Reconciler) Reconcile() error { return r.reconcile(true) }

// reconcile runs one pass. A pass that is not full (a new view, an attach
// or a release) skips re-wiring the sandboxes' links, which no view
// changes, and trusts the VIP tables it wrote; the periodic full pass
// checks everything the kernel holds.
func (r *Reconciler) reconcile(full bool) error {
	r.apply.Lock()
	defer r.apply.Unlock()
	view, sbs := r.snapshot()
	if view == nil {
		return nil // nothing is torn down before the first view
	}
	plans, errs := planNetworks(view, sbs, r.cfg.NodeID)
	if len(errs) > 0 {
		r.log.Warn("network view entries left out", "err", errors.Join(errs...))
		errs = nil
	}
	if r.anyEgress() {
		errs = append(errs, r.ensureGateway())
	}
	repairs := 0
	// New entries first, then the VIP and port rules, and only then the
	// entries of endpoints that left: a rule never points at an endpoint
	// the overlay no longer reaches.
	for _, p := range plans {
		n, err := r.ensureOverlay(p, false)
		repairs += n
		errs = append(errs, err)
	}
	for id := range sbs {
		errs = append(errs, r.repairSandbox(id, view, plans, full))
	}
	errs = append(errs, r.ensurePorts(view))
	for _, p := range plans {
		n, err := r.ensureOverlay(p, true)
		repairs += n
		errs = append(errs, err)
	}
	errs = append(errs, r.removeStaleNetworks(plans))
	r.mu.Lock()
	r.passes++
	r.repairs += repairs
	r.mu.Unlock()
	return errors.Join(errs...)
}

// repairSandbox re-wires one sandbox and rewrites its VIP table when the
// rules changed or the table is gone.
func (r *Reconciler) repairSandbox(id string, view *api.NetworkView, plans map[string]*netPlan, full bool) error {
	r.mu.Lock()
	st := r.sandboxes[id]
	r.mu.Unlock()
	if st == nil || st.sb.None {
		return nil
	}
	if full {
		if err := r.ensureSandbox(st.sb, plans, st.egress); err != nil {
			return err
		}
	}
	if err := r.dns.start(st.sb, r.taskPath(id)); err != nil {
		return err
	}
	return r.ensureVIPs(st, view, full)
}

func (r *Reconciler) ensureSandboxNets(st *sandboxState, plans map[string]*netPlan) error {
	if st.egress.IsValid() {
		if err := r.ensureGateway(); err != nil {
			return err
		}
	}
	return r.ensureSandbox(st.sb, plans, st.egress)
}

func (r *Reconciler) ensureVIPs(st *sandboxState, view *api.NetworkView, check bool) error {
	rules := planVIPs(view, st.sb, runningBackends(view))
	key := vipKey(rules)
	r.mu.Lock()
	same := st.written && key == st.vipKey
	r.mu.Unlock()
	if same && !check {
		return nil
	}
	ns, err := openNetNS(r.taskPath(st.sb.TaskID))
	if err != nil {
		return err
	}
	defer ns.Close()
	if same {
		if ok, err := tableExists(ns, tableVIP); err != nil || ok {
			return err
		}
	}
	if err := writeVIPs(ns, rules); err != nil {
		return fmt.Errorf("task %s: %w", st.sb.TaskID, err)
	}
	r.mu.Lock()
	st.vipKey, st.written = key, true
	r.mu.Unlock()
	return nil
}

// anyEgress reports whether a sandbox needs the gateway bridge.
func (r *Reconciler) anyEgress() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.sandboxes {
		if st.egress.IsValid() {
			return true
		}
	}
	return false
}

// removeStaleNetworks deletes the namespaces of networks not planned.
func (r *Reconciler) removeStaleNetworks(plans map[string]*netPlan) error {
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return fmt.Errorf("read netns dir: %w", err)
	}
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), "net-")
		if !ok || plans[id] != nil {
			continue
		}
		r.log.Info("removing network namespace", "network_id", id)
		errs = append(errs, deleteNetNS(filepath.Join(r.cfg.Dir, e.Name())))
	}
	return errors.Join(errs...)
}
