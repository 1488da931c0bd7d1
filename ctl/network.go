package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func networkSubject(name string) string { return fmt.Sprintf("network %q", name) }

func newNetworkCommand(g *globals) *cobra.Command {
	cmd := groupCommand("network", "Create, list, inspect and remove overlay networks",
		`  shoalctl network create -d overlay --subnet 10.20.0.0/24 front
  shoalctl network ls
  shoalctl service create --name web --network front busybox:1.36 httpd -f`)
	cmd.AddCommand(newNetworkCreateCommand(g), newNetworkLsCommand(g), newNetworkInspectCommand(g), newNetworkRmCommand(g))
	return cmd
}

// networkCreateFlags are what `network create` reads.
type networkCreateFlags struct {
	driver     string
	subnet     string
	attachable bool
	internal   bool
	labels     []string
}

// spec checks the flags and builds the spec, naming the flag of a bad value.
func (f *networkCreateFlags) spec(name string) (*shoalpb.NetworkSpec, error) {
	labels, err := addLabels(nil, "--label", f.labels)
	if err != nil {
		return nil, err
	}
	spec := api.NetworkSpec{Name: name, Driver: f.driver, Subnet: f.subnet, Labels: labels, Attachable: f.attachable, Internal: f.internal}
	if err := api.ValidateNetworkSpec(&spec); err != nil {
		var errs []error
		for _, e := range unjoin(err) {
			errs = append(errs, asFlag(e, map[string]string{
				"spec.name": "NAME", "spec.driver": "--driver", "spec.subnet": "--subnet", "spec.labels": "--label",
			}))
		}
		return nil, errors.Join(errs...)
	}
	return shoalpb.FromNetworkSpec(spec), nil
}

func newNetworkCreateCommand(g *globals) *cobra.Command {
	f := &networkCreateFlags{}
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NAME",
		Short: "Create an overlay network",
		Long: `Create an overlay network that spans every agent host a task on it runs on.
Without --subnet the leader takes a free /24 of its default pool (10.10.0.0/16);
a --subnet may not overlap another network, the ingress network's 10.255.0.0/16
or a node's own address. Tasks of services on the network reach each other by
service name (the service's virtual IP) and tasks.NAME (the replicas' IPs).`,
		Example: `  shoalctl network create front
  shoalctl network create -d overlay --subnet 10.20.0.0/24 --attachable --label team=web front
  shoalctl network create --internal backend`,
		Args: exactlyOne("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.spec(args[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				n, err := invoke(ctx, c, shoalpb.ControlClient.CreateNetwork, &shoalpb.CreateNetworkRequest{Spec: spec, DryRun: dryRun})
				if err != nil {
					return rpcError(networkSubject(args[0]), err)
				}
				switch {
				case g.structured(outputTable):
					return g.writeMsg(n)
				case dryRun:
					_, err = fmt.Fprintf(g.app.Out, "would create network %s: subnet %s, gateway %s, VNI %d\n",
						args[0], n.GetNetwork().GetSubnet(), n.GetNetwork().GetGateway(), n.GetNetwork().GetVni())
					return err
				}
				_, err = fmt.Fprintln(g.app.Out, n.GetNetwork().GetId())
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.driver, "driver", "d", api.NetworkDriverOverlay, "network driver (only overlay)")
	fl.StringVar(&f.subnet, "subnet", "", "subnet in CIDR form, /8 to /29 (default: a free /24 of 10.10.0.0/16)")
	fl.BoolVar(&f.attachable, "attachable", false, "let standalone containers join (recorded, for compose parity)")
	fl.BoolVar(&f.internal, "internal", false, "no traffic to or from outside the network")
	fl.StringArrayVar(&f.labels, "label", nil, "network label KEY=VALUE (repeatable)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the subnet and VNI the network would get; create nothing")
	return cmd
}

func newNetworkLsCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List networks with their subnets and the services on them",
		Example: `  shoalctl network ls
  shoalctl network ls -q
  shoalctl network ls --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.ListNetworks, &shoalpb.ListNetworksRequest{Stale: rf.stale})
				if err != nil {
					return rpcError("", err)
				}
				switch {
				case rf.quiet:
					var ids []string
					for _, n := range resp.GetNetworks() {
						ids = append(ids, n.GetNetwork().GetId())
					}
					return printIDs(g.app.Out, ids, rf.noTrunc)
				case g.structured(outputTable):
					return writeMsgList(g, resp.GetNetworks())
				}
				w, err := rf.out(g.app.Out)
				if err != nil {
					return err
				}
				return writeNetworkTable(w, resp.GetNetworks(), rf.noTrunc)
			})
		},
	}
	rf.register(cmd, true)
	cmd.Flags().BoolVarP(&rf.quiet, "quiet", "q", false, "print only IDs, one a line")
	return cmd
}

func writeNetworkTable(w io.Writer, nets []*shoalpb.NetworkSummary, noTrunc bool) error {
	t := newTable(w, "ID", "NAME", "DRIVER", "SUBNET", "VNI", "SCOPE", "SERVICES")
	for _, s := range nets {
		n := s.GetNetwork()
		scope := "swarm"
		if n.GetIngress() {
			scope = "ingress"
		}
		t.row(shortID(n.GetId(), noTrunc), n.GetSpec().GetName(), n.GetSpec().GetDriver(), n.GetSubnet(),
			fmt.Sprint(n.GetVni()), scope, fmt.Sprint(len(s.GetServices())))
	}
	return t.flush()
}

func newNetworkInspectCommand(g *globals) *cobra.Command {
	var rf readFlags
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect NETWORK [NETWORK...]",
		Short: "Show networks in full (JSON by default, like docker)",
		Long:  "Show networks in full. NETWORK is a name, an ID or a unique ID prefix.",
		Example: `  shoalctl network inspect front
  shoalctl network inspect --pretty front`,
		Args: atLeastOne("NETWORK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				get := func(name string) (*shoalpb.NetworkSummary, error) {
					return invoke(ctx, c, shoalpb.ControlClient.GetNetwork, &shoalpb.GetNetworkRequest{Network: name, Stale: rf.stale})
				}
				return inspectEach(g, rf, args, pretty, networkSubject, get, writeNetworksPretty)
			})
		},
	}
	rf.register(cmd, false)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary instead of JSON (same as --output table)")
	return cmd
}

func writeNetworksPretty(w io.Writer, nets []*shoalpb.NetworkSummary) error {
	for i, sum := range nets {
		if i > 0 {
			fmt.Fprintln(w)
		}
		n := sum.GetNetwork()
		s := newSection(w)
		s.line(0, "ID", n.GetId())
		s.line(0, "Name", n.GetSpec().GetName())
		s.line(0, "Driver", n.GetSpec().GetDriver())
		s.line(0, "Subnet", n.GetSubnet())
		s.line(0, "Gateway", n.GetGateway())
		s.line(0, "VNI", fmt.Sprint(n.GetVni()))
		s.line(0, "Labels", joinMap(n.GetSpec().GetLabels()))
		s.line(0, "Attachable", yesIf(n.GetSpec().GetAttachable()))
		s.line(0, "Internal", yesIf(n.GetSpec().GetInternal()))
		s.line(0, "Ingress", yesIf(n.GetIngress()))
		s.line(0, "Services", strings.Join(sum.GetServices(), ", "))
		if err := s.flush(); err != nil {
			return err
		}
	}
	return nil
}

func yesIf(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func newNetworkRmCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove networks no service uses",
		Long: `Remove networks. A network a service is on is refused, naming the service:
take the service off it first (service update --network-rm) or remove it.`,
		Example: `  shoalctl network rm front`,
		Args:    atLeastOne("NETWORK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				return g.removeEach(args, networkSubject, func(name string) (uint64, error) {
					resp, err := invoke(ctx, c, shoalpb.ControlClient.RemoveNetwork, &shoalpb.RemoveNetworkRequest{Network: name})
					return resp.GetIndex(), err
				})
			})
		},
	}
}

// writeNetworkingPretty adds a service's networks, endpoint mode, VIPs and
// published ports to its pretty inspect (nothing for a host-network
// service that publishes nothing).
func writeNetworkingPretty(s *section, svc *shoalpb.Service) {
	spec := specOf(svc)
	ep := shoalpb.ToServiceEndpoint(svc.GetEndpoint())
	if len(spec.Networks) == 0 && len(spec.Endpoint.Ports) == 0 && len(ep.VIPs) == 0 {
		return
	}
	s.head(0, "Networking")
	for _, a := range spec.Networks {
		text := a.Target
		if len(a.Aliases) > 0 {
			text += " (aliases " + strings.Join(a.Aliases, ", ") + ")"
		}
		s.line(1, "Network", text)
	}
	s.line(1, "Endpoint mode", api.EndpointModeOf(spec))
	for _, v := range ep.VIPs {
		s.line(1, "VIP", v.Addr+" on "+v.NetworkID)
	}
	ports := ep.Ports
	if len(ports) == 0 {
		ports = spec.Endpoint.Ports // not allocated yet
	}
	for _, p := range ports {
		pub := "(dynamic)"
		if p.PublishedPort != 0 {
			pub = fmt.Sprint(p.PublishedPort)
		}
		s.line(1, "Port", fmt.Sprintf("%s -> %d/%s (%s)", pub, p.TargetPort, p.PortProtocol(), p.Mode()))
	}
}
