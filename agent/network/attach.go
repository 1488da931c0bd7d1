package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/shoal-sched/shoal/api"
)

// Wiring is what a container's spec needs from the data plane.
type Wiring struct {
	NetNS      string // path of the task's network namespace
	ResolvConf string // file for /etc/resolv.conf (the embedded DNS)
	Hosts      string // file for /etc/hosts
	Hostname   string
}

// Attach wires the namespace of a task before its container starts and
// returns its wiring, for the runtime to put in the container's spec. It
// waits (bounded by ctx) until the view holds every network the task is
// on. Attaching a task that is attached already repairs it.
func (r *Reconciler) Attach(ctx context.Context, sb Sandbox) (Wiring, error) {
	if err := safeName(sb.TaskID); err != nil {
		return Wiring{}, err
	}
	for _, a := range sb.Attachments {
		if err := safeName(a.NetworkID); err != nil {
			return Wiring{}, err
		}
	}
	view, err := r.waitNetworks(ctx, sb)
	if err != nil {
		return Wiring{}, err
	}
	r.apply.Lock()
	defer r.apply.Unlock()
	st, err := r.admit(sb, view)
	if err != nil {
		return Wiring{}, err
	}
	path := r.taskPath(sb.TaskID)
	if err := r.wire(st, view); err != nil {
		return Wiring{}, err
	}
	if err := r.dns.start(sb, path); err != nil {
		return Wiring{}, err
	}
	w, err := r.writeFiles(sb)
	if err != nil {
		return Wiring{}, err
	}
	w.NetNS = path
	r.poke() // the published ports may now reach a local replica
	return w, nil
}

// writeFiles writes the task's resolv.conf (the embedded DNS, ndots:0 so
// a short name is tried as it is first) and hosts.
func (r *Reconciler) writeFiles(sb Sandbox) (Wiring, error) {
	dir := r.filesPath(sb.TaskID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Wiring{}, fmt.Errorf("task %s files: %w", sb.TaskID, err)
	}
	host := sb.TaskID
	if len(host) > 12 {
		host = host[:12]
	}
	w := Wiring{ResolvConf: filepath.Join(dir, "resolv.conf"), Hosts: filepath.Join(dir, "hosts"), Hostname: host}
	resolv := "nameserver 127.0.0.11\noptions ndots:0\n"
	if sb.None {
		resolv = ""
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if len(sb.Attachments) > 0 {
		if ip, err := addrOf(sb.Attachments[0].Addr); err == nil {
			hosts += ip.String() + "\t" + host + "\n"
		}
	}
	for name, content := range map[string]string{w.ResolvConf: resolv, w.Hosts: hosts} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return Wiring{}, fmt.Errorf("task %s: %w", sb.TaskID, err)
		}
	}
	return w, nil
}

func (r *Reconciler) filesPath(taskID string) string {
	return filepath.Join(r.cfg.Dir, "files", taskID)
}

// wire makes a sandbox's namespace, its networks and its VIP table.
func (r *Reconciler) wire(st *sandboxState, view *api.NetworkView) error {
	if st.sb.None {
		if err := createNetNS(r.taskPath(st.sb.TaskID)); err != nil {
			return err
		}
		ns, err := openNetNS(r.taskPath(st.sb.TaskID))
		if err != nil {
			return err
		}
		defer ns.Close()
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
		return linkUp(h, "lo")
	}
	_, sbs := r.snapshot()
	plans, errs := planNetworks(view, sbs, r.cfg.NodeID)
	for _, a := range st.sb.Attachments {
		if plans[a.NetworkID] == nil {
			return fmt.Errorf("task %s: network %s: %w", st.sb.TaskID, a.NetworkID, errors.Join(errs...))
		}
		if _, err := r.ensureOverlay(plans[a.NetworkID], false); err != nil {
			return err
		}
	}
	if err := r.ensureSandboxNets(st, plans); err != nil {
		return err
	}
	return r.ensureVIPs(st, view, true)
}

// waitNetworks returns the view once it holds every network of sb.
func (r *Reconciler) waitNetworks(ctx context.Context, sb Sandbox) (*api.NetworkView, error) {
	for {
		r.mu.Lock()
		v, ch := r.view, r.viewCh
		r.mu.Unlock()
		missing := missingNetwork(v, sb)
		if missing == "" {
			if v == nil {
				v = &api.NetworkView{}
			}
			return v, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("task %s: network %s: %w (still waiting when cut short: %w)", sb.TaskID, missing, ErrUnknownNetwork, ctx.Err())
		case <-ch:
		}
	}
}

// missingNetwork is the first network of sb the view lacks ("" if none).
func missingNetwork(v *api.NetworkView, sb Sandbox) string {
	for _, a := range sb.Attachments {
		found := false
		if v != nil {
			for _, n := range v.Networks {
				found = found || n.ID == a.NetworkID
			}
		}
		if !found {
			return a.NetworkID
		}
	}
	return ""
}

// admit records the sandbox and gives it a gateway-bridge address unless
// it is on internal networks only (or none).
func (r *Reconciler) admit(sb Sandbox, view *api.NetworkView) (*sandboxState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.sandboxes[sb.TaskID]; st != nil {
		st.sb = sb
		return st, nil
	}
	st := &sandboxState{sb: sb}
	if !sb.None && needsEgress(view, sb) {
		if ip := sandboxEgressAddr(r.taskPath(sb.TaskID)); ip.IsValid() && r.egressIPs[ip] == "" {
			st.egress = ip // an agent restart: keep the address the sandbox has
		} else {
			ip, err := r.allocEgressLocked()
			if err != nil {
				return nil, err
			}
			st.egress = ip
		}
		r.egressIPs[st.egress] = sb.TaskID
	}
	r.sandboxes[sb.TaskID] = st
	return st, nil
}

func needsEgress(v *api.NetworkView, sb Sandbox) bool {
	internal := map[string]bool{}
	for _, n := range v.Networks {
		internal[n.ID] = n.Spec.Internal
	}
	for _, a := range sb.Attachments {
		if !internal[a.NetworkID] {
			return true
		}
	}
	return false
}

func (r *Reconciler) allocEgressLocked() (netip.Addr, error) {
	for ip := r.gwAddr.Next(); r.gwSubnet.Contains(ip); ip = ip.Next() {
		if r.egressIPs[ip] == "" && r.gwSubnet.Contains(ip.Next()) { // the last is broadcast
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("gateway subnet %s: %w", r.gwSubnet, errNoAddr)
}

// Release removes a task's namespace (its veths go with it) once its
// container has stopped. Releasing an unknown task removes what is left.
func (r *Reconciler) Release(taskID string) error {
	if err := safeName(taskID); err != nil {
		return err
	}
	r.apply.Lock()
	defer r.apply.Unlock()
	r.dns.stop(taskID)
	err := errors.Join(deleteNetNS(r.taskPath(taskID)), os.RemoveAll(r.filesPath(taskID)))
	r.mu.Lock()
	if st := r.sandboxes[taskID]; st != nil {
		delete(r.egressIPs, st.egress)
		delete(r.sandboxes, taskID)
	}
	r.mu.Unlock()
	r.poke()
	return err
}

// Prune removes the namespaces of tasks not in keep: what an agent that
// died left of containers that are gone. It is called once at start,
// before the containers still running are attached again.
func (r *Reconciler) Prune(keep map[string]bool) error {
	r.apply.Lock()
	defer r.apply.Unlock()
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read netns dir: %w", err)
	}
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), "task-")
		if !ok || keep[id] {
			continue
		}
		r.log.Info("removing the namespace of a task that is gone", "task_id", id)
		r.dns.stop(id)
		errs = append(errs, deleteNetNS(filepath.Join(r.cfg.Dir, e.Name())), os.RemoveAll(r.filesPath(id)))
		r.mu.Lock()
		if st := r.sandboxes[id]; st != nil {
			delete(r.egressIPs, st.egress)
			delete(r.sandboxes, id)
		}
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Close stops the DNS servers and releases the host namespace handle;
// kernel state stays for the next agent to adopt.
func (r *Reconciler) Close() {
	r.dns.stopAll()
	r.hostNS.Close()
}

// Remove deletes everything the data plane made on this host: every
// namespace under Dir, the gateway bridge and the nft tables of the host
// namespace (an agent leaving for good, or a test's cleanup).
func (r *Reconciler) Remove() error {
	r.apply.Lock()
	defer r.apply.Unlock()
	r.dns.stopAll()
	var errs []error
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "net-") || strings.HasPrefix(e.Name(), "task-") {
			errs = append(errs, deleteNetNS(filepath.Join(r.cfg.Dir, e.Name())))
		}
	}
	errs = append(errs, os.RemoveAll(filepath.Join(r.cfg.Dir, "files")))
	errs = append(errs, deleteTable(r.hostNS, tableEgress), deleteTable(r.hostNS, tableIngress))
	if h, err := netlink.NewHandleAt(r.hostNS); err == nil {
		if l, err := h.LinkByName(r.cfg.GatewayBridge); err == nil {
			errs = append(errs, h.LinkDel(l))
		}
		h.Close()
	}
	r.mu.Lock()
	r.sandboxes = map[string]*sandboxState{}
	r.egressIPs = map[netip.Addr]string{}
	r.mu.Unlock()
	return errors.Join(errs...)
}

// Sandboxes lists the attached tasks.
func (r *Reconciler) Sandboxes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.sandboxes))
	for id := range r.sandboxes {
		ids = append(ids, id)
	}
	return ids
}

// View is the view held (nil before the first).
func (r *Reconciler) View() *api.NetworkView {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.view
}
