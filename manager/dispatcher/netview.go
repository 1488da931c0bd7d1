package dispatcher

import (
	"net"
	"reflect"
	"slices"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// NetworkInputs is what a node's network view is computed from: the
// store's networks, services, tasks and nodes at one index.
type NetworkInputs struct {
	Index    uint64
	Networks []*api.Network
	Services []*api.Service
	Tasks    []*api.Task
	Nodes    []*api.Node
}

// BuildNetworkView computes the network view of one node: the networks its
// assigned tasks are on, and ingress (every agent serves the mesh); every
// endpoint on those networks, cluster-wide, with its host's underlay IP;
// and the routes of the services on them. It is a pure function of its
// inputs, ordered by name and ID so that equal states give equal views.
// Version is the state's index: it grows across leaders too.
func BuildNetworkView(nodeID string, in NetworkInputs) *api.NetworkView {
	on := make(map[string]bool)
	for _, n := range in.Networks {
		if n.Ingress {
			on[n.ID] = true
		}
	}
	for _, t := range in.Tasks {
		if t.NodeID == nodeID && inSet(t) {
			for _, a := range t.Networks {
				on[a.NetworkID] = true
			}
		}
	}
	view := &api.NetworkView{Version: in.Index}
	for _, n := range in.Networks {
		if on[n.ID] {
			view.Networks = append(view.Networks, *n.Clone())
		}
	}
	view.Endpoints = endpoints(on, in)
	view.Services = routes(on, in)
	return view
}

// endpoints lists the attachments, on networks in on, of the tasks that
// are placed and not finished.
func endpoints(on map[string]bool, in NetworkInputs) []api.Endpoint {
	addrs := make(map[string]string, len(in.Nodes))
	for _, n := range in.Nodes {
		addrs[n.ID] = underlayIP(n.Addr)
	}
	var out []api.Endpoint
	for _, t := range in.Tasks {
		if t.NodeID == "" || !inSet(t) || t.Status.State.Terminal() {
			continue
		}
		running := t.Status.State == api.TaskRunning && t.DesiredState == api.TaskRunning
		for _, a := range t.Networks {
			if !on[a.NetworkID] {
				continue
			}
			out = append(out, api.Endpoint{
				TaskID: t.ID, ServiceID: t.ServiceID, ServiceName: t.ServiceName, NodeID: t.NodeID,
				NodeAddr: addrs[t.NodeID], NetworkID: a.NetworkID, Addr: a.Addr, MAC: a.MAC,
				Aliases: slices.Clone(a.Aliases), Running: running,
			})
		}
	}
	slices.SortFunc(out, func(a, b api.Endpoint) int {
		if c := strings.Compare(a.NetworkID, b.NetworkID); c != 0 {
			return c
		}
		return strings.Compare(a.TaskID, b.TaskID)
	})
	return out
}

// routes lists the services on networks in on, with their VIPs there.
func routes(on map[string]bool, in NetworkInputs) []api.ServiceRoutes {
	byName := make(map[string]*api.Network, len(in.Networks))
	for _, n := range in.Networks {
		byName[n.Spec.Name], byName[n.ID] = n, n
	}
	var out []api.ServiceRoutes
	for _, s := range in.Services {
		r := api.ServiceRoutes{ServiceID: s.ID, Name: s.Spec.Name, EndpointMode: api.EndpointModeOf(&s.Spec)}
		for _, a := range api.OverlayTargets(&s.Spec) {
			if n := byName[a.Target]; n != nil && on[n.ID] && len(a.Aliases) > 0 {
				if r.Aliases == nil {
					r.Aliases = make(map[string][]string)
				}
				r.Aliases[n.ID] = slices.Clone(a.Aliases)
			}
		}
		for _, v := range s.Endpoint.VIPs {
			if on[v.NetworkID] {
				r.VIPs = append(r.VIPs, v)
			}
		}
		used := len(r.VIPs) > 0 || len(r.Aliases) > 0 || onAny(on, &s.Spec, in.Networks)
		if !used {
			continue
		}
		r.Ports = slices.Clone(s.Endpoint.Ports)
		if st := s.Spec.Labels[api.LabelStack]; st != "" {
			r.Stack, r.ShortName = st, strings.TrimPrefix(s.Spec.Name, st+"_")
		}
		out = append(out, r)
	}
	return out
}

func onAny(on map[string]bool, s *api.ServiceSpec, networks []*api.Network) bool {
	for _, n := range networks {
		if on[n.ID] && api.UsesNetwork(s, n) {
			return true
		}
	}
	return false
}

// underlayIP is the host part of an agent's address: the IP its VXLAN
// tunnels end at.
func underlayIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// viewUpdate returns the message carrying the node's network view when it
// differs from last (or force is set), and records it as sent. Nothing is
// computed or sent while the store holds no network and nothing was sent
// before: agents of a cluster without networks never see a view.
func (s *session) viewUpdate(last **api.NetworkView, force bool) *shoalpb.ManagerMessage {
	v := s.d.cfg.State.Read()
	nets := v.Networks()
	if len(nets) == 0 && *last == nil {
		return nil
	}
	view := BuildNetworkView(s.nodeID, NetworkInputs{
		Index: v.Index(), Networks: nets, Services: v.Services(), Tasks: v.Tasks(), Nodes: v.Nodes(),
	})
	if !force && *last != nil && sameView(*last, view) {
		return nil
	}
	*last = view
	return &shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_NetworkView{NetworkView: shoalpb.FromNetworkView(view)}}
}

func sameView(a, b *api.NetworkView) bool {
	x, y := *a, *b
	x.Version, y.Version = 0, 0
	return reflect.DeepEqual(x, y)
}

// endpointKey is what of a task a network view shows: an endpoint's node,
// whether it is listed, and whether it runs.
type endpointKey struct {
	node          string
	listed, alive bool
}

func endpointOf(t *api.Task) endpointKey {
	return endpointKey{node: t.NodeID, listed: t.NodeID != "" && inSet(t) && !t.Status.State.Terminal(),
		alive: t.Status.State == api.TaskRunning && t.DesiredState == api.TaskRunning}
}

// netEvents tells the network events from the others. It remembers what
// the views showed of each task on a network, so that the status steps a
// view does not show (accepted, preparing, starting) wake no session.
type netEvents struct{ seen map[string]endpointKey }

func newNetEvents() *netEvents { return &netEvents{seen: map[string]endpointKey{}} }

// changes reports whether ev may change some node's network view.
func (n *netEvents) changes(ev raftstore.Event) bool {
	if t := ev.Task; t != nil && ev.Network == nil {
		if len(t.Networks) == 0 {
			return false
		}
		old, had := n.seen[t.ID]
		if ev.Action == "remove" {
			delete(n.seen, t.ID)
			return true
		}
		now := endpointOf(t)
		n.seen[t.ID] = now
		return !had || old != now
	}
	return networkEvent(ev)
}

// networkEvent reports whether ev may change some node's network view.
func networkEvent(ev raftstore.Event) bool {
	switch {
	case ev.Network != nil:
		return true
	case ev.Task != nil:
		return len(ev.Task.Networks) > 0
	case ev.Service != nil:
		return len(ev.Service.Endpoint.VIPs) > 0 || len(ev.Service.Endpoint.Ports) > 0 || len(ev.Service.Spec.Networks) > 0
	}
	return false
}
