package api

// Networks, as Swarm has them: an overlay network spans every agent host a
// task on it runs on; a service gets a virtual IP on each of its networks;
// each task gets an address (and a MAC derived from it) on each network.
// The leader allocates all of it and commits it before a task is
// dispatched; agents build the data plane from a NetworkView.

// Network drivers and the names Swarm reserves.
const (
	NetworkDriverOverlay = "overlay"

	// NetworkHost and NetworkNone are not networks in the store: a service
	// on "host" shares its agent host's namespace (shoal's behaviour before
	// networks existed); on "none" it gets a namespace with loopback only.
	NetworkHost = "host"
	NetworkNone = "none"
	// NetworkIngress is the network the routing mesh uses; the leader
	// creates it on first need.
	NetworkIngress = "ingress"
)

// Endpoint modes.
const (
	EndpointModeVIP   = "vip"   // NAME resolves to one virtual IP, balanced across replicas
	EndpointModeDNSRR = "dnsrr" // NAME resolves to the replicas' own IPs
)

// Port publishing modes and protocols.
const (
	PublishModeIngress = "ingress" // the port answers on every agent host (routing mesh)
	PublishModeHost    = "host"    // the port answers only where a replica runs

	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// Dynamic published ports are taken from this range, as Swarm does.
const (
	DynamicPortFirst = 30000
	DynamicPortLast  = 32767
)

// NetworkSpec is what a user asks for.
type NetworkSpec struct {
	Name   string            `json:"name"`
	Driver string            `json:"driver"`           // NetworkDriverOverlay
	Subnet string            `json:"subnet,omitempty"` // CIDR; empty: allocated from the default pool
	Labels map[string]string `json:"labels,omitempty"`
	// Attachable lets standalone containers join (kept for compose parity).
	Attachable bool `json:"attachable,omitempty"`
	// Internal networks have no egress to the outside world.
	Internal bool `json:"internal,omitempty"`
}

// Network is a network in the store, with what the leader allocated.
type Network struct {
	ID      string      `json:"id"`
	Spec    NetworkSpec `json:"spec"`
	Subnet  string      `json:"subnet"`  // allocated CIDR, e.g. 10.20.0.0/24
	Gateway string      `json:"gateway"` // first address of Subnet, without prefix length
	VNI     uint32      `json:"vni"`     // VXLAN network identifier
	Ingress bool        `json:"ingress,omitempty"`
}

// NetworkAttachmentSpec is a service's request to be on a network.
type NetworkAttachmentSpec struct {
	Target  string   `json:"target"` // network name or ID, or NetworkHost / NetworkNone
	Aliases []string `json:"aliases,omitempty"`
}

// PortConfig is one published port.
type PortConfig struct {
	Protocol      string `json:"protocol,omitempty"` // ProtocolTCP (default) or ProtocolUDP
	TargetPort    uint16 `json:"target_port"`
	PublishedPort uint16 `json:"published_port,omitempty"` // 0: dynamic, from DynamicPortFirst..DynamicPortLast
	PublishMode   string `json:"publish_mode,omitempty"`   // PublishModeIngress (default) or PublishModeHost
}

// EndpointSpec is how a service is reached.
type EndpointSpec struct {
	Mode  string       `json:"mode,omitempty"` // EndpointModeVIP (default) or EndpointModeDNSRR
	Ports []PortConfig `json:"ports,omitempty"`
}

// VIP is a service's virtual IP on one network.
type VIP struct {
	NetworkID string `json:"network_id"`
	Addr      string `json:"addr"` // CIDR form, e.g. 10.20.0.2/24
}

// ServiceEndpoint is what the leader allocated for a service: its ports
// with every published port chosen, and a VIP per network (VIP mode only).
type ServiceEndpoint struct {
	Ports []PortConfig `json:"ports,omitempty"`
	VIPs  []VIP        `json:"vips,omitempty"`
}

// NetworkAttachment is a task's address on one network.
type NetworkAttachment struct {
	NetworkID string   `json:"network_id"`
	Addr      string   `json:"addr"` // CIDR form, e.g. 10.20.0.7/24
	MAC       string   `json:"mac"`  // derived from Addr, so every host computes the same one
	Aliases   []string `json:"aliases,omitempty"`
}

// NetworkView is everything one agent needs to wire its containers and
// answer DNS: the networks its tasks are on (and ingress, on every agent),
// every endpoint on those networks across the cluster, and the services
// reachable on them. The leader streams it on the agent's session; the
// agent reconciles the kernel against it (level-triggered).
type NetworkView struct {
	// Version grows with every change the leader sends; an agent ignores
	// a view older than the one it holds.
	Version   uint64          `json:"version"`
	Networks  []Network       `json:"networks,omitempty"`
	Endpoints []Endpoint      `json:"endpoints,omitempty"`
	Services  []ServiceRoutes `json:"services,omitempty"`
}

// Endpoint is one task's attachment to one network, as seen cluster-wide.
type Endpoint struct {
	TaskID      string `json:"task_id"`
	ServiceID   string `json:"service_id"`
	ServiceName string `json:"service_name"`
	NodeID      string `json:"node_id"`
	// NodeAddr is the agent host's underlay IP: the VXLAN tunnel endpoint.
	NodeAddr  string   `json:"node_addr"`
	NetworkID string   `json:"network_id"`
	Addr      string   `json:"addr"` // CIDR form
	MAC       string   `json:"mac"`
	Aliases   []string `json:"aliases,omitempty"`
	// Running is true when the task runs: only running endpoints are VIP
	// backends and DNS answers; the others still get FDB entries so the
	// first packets after start are not lost.
	Running bool `json:"running,omitempty"`
}

// ServiceRoutes is how one service is reached: by name (and its aliases and
// its stack-local short name) on each of its networks, at its VIPs, and on
// its published ports.
type ServiceRoutes struct {
	ServiceID string `json:"service_id"`
	Name      string `json:"name"` // full name, e.g. shop_back
	// Stack and ShortName let a stack's services find each other by their
	// compose names ("back") inside the stack.
	Stack        string       `json:"stack,omitempty"`
	ShortName    string       `json:"short_name,omitempty"`
	EndpointMode string       `json:"endpoint_mode"`
	VIPs         []VIP        `json:"vips,omitempty"`
	Ports        []PortConfig `json:"ports,omitempty"` // allocated (published ports chosen)
	// Aliases per network ID, from the service's NetworkAttachmentSpecs.
	Aliases map[string][]string `json:"aliases,omitempty"`
}
