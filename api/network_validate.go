package api

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Limits of networks and of a service's networking.
const (
	MaxNetworks           = 1024 // networks in a cluster
	MaxNetworksPerService = 16
	MaxAliases            = 16 // aliases of one attachment
	MaxPorts              = 64 // published ports of one service
	// A network's subnet is between /8 and /29: a /30 would leave one
	// address beside the gateway.
	MinSubnetBits = 8
	MaxSubnetBits = 29
)

// ReservedNetworkName reports whether name is one a user may not create.
func ReservedNetworkName(name string) bool {
	return name == NetworkHost || name == NetworkNone || name == NetworkIngress
}

// ValidateNetworkSpec checks a network create request: the name (the
// rules of a service name, and not host, none or ingress), the driver, the
// subnet (an IPv4 network address, /8 to /29) and the labels.
func ValidateNetworkSpec(s *NetworkSpec) error {
	var errs []error
	if err := ValidateServiceName(s.Name); err != nil {
		errs = append(errs, &FieldError{Field: "spec.name", Value: s.Name, Err: err})
	} else if ReservedNetworkName(s.Name) {
		errs = append(errs, fieldErr("spec.name", s.Name, "reserved (host, none and ingress are built in)"))
	}
	if s.Driver != "" && s.Driver != NetworkDriverOverlay {
		errs = append(errs, fieldErr("spec.driver", s.Driver, "not supported: the only driver is %q", NetworkDriverOverlay))
	}
	if s.Subnet != "" {
		if err := ValidateSubnet(s.Subnet); err != nil {
			errs = append(errs, &FieldError{Field: "spec.subnet", Value: s.Subnet, Err: err})
		}
	}
	errs = append(errs, validateLabels("spec.labels", s.Labels)...)
	return joinErrors(errs)
}

// ValidateSubnet checks one subnet in CIDR form.
func ValidateSubnet(cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	switch {
	case err != nil:
		return fmt.Errorf("not a CIDR (want e.g. 10.20.0.0/24): %v", err)
	case !p.Addr().Is4():
		return fmt.Errorf("not IPv4: only IPv4 subnets are supported")
	case p.Bits() < MinSubnetBits || p.Bits() > MaxSubnetBits:
		return fmt.Errorf("prefix length /%d out of range: want /%d to /%d", p.Bits(), MinSubnetBits, MaxSubnetBits)
	case p.Masked() != p:
		return fmt.Errorf("host bits set: the network address is %s", p.Masked())
	}
	return nil
}

// validateNetworking checks a service's networks and endpoint.
func validateNetworking(s *ServiceSpec) []error {
	var errs []error
	if err := CheckCount("spec.networks", len(s.Networks), MaxNetworksPerService); err != nil {
		return []error{err}
	}
	seen := map[string]bool{}
	special := ""
	for i, a := range s.Networks {
		f := fmt.Sprintf("spec.networks[%d]", i)
		switch {
		case a.Target == "":
			errs = append(errs, fieldErr(f+".target", "", "missing: give a network name or id"))
		case len(a.Target) > MaxRefLen:
			errs = append(errs, CheckLen(f+".target", a.Target, MaxRefLen))
		case seen[a.Target]:
			errs = append(errs, fieldErr(f+".target", a.Target, "named twice"))
		case a.Target == NetworkIngress:
			errs = append(errs, fieldErr(f+".target", a.Target, "the ingress network is joined by publishing a port (--publish), not named"))
		case a.Target == NetworkHost || a.Target == NetworkNone:
			special = a.Target
			if len(a.Aliases) > 0 {
				errs = append(errs, fieldErr(f+".aliases", a.Aliases[0], "network %s has no aliases", a.Target))
			}
		}
		seen[a.Target] = true
		errs = append(errs, validateAliases(f+".aliases", a.Aliases)...)
	}
	if special != "" && len(s.Networks) > 1 {
		errs = append(errs, fieldErr("spec.networks", special, "network %s cannot be combined with other networks", special))
	}
	errs = append(errs, validateEndpoint(s, special)...)
	return errs
}

func validateAliases(field string, aliases []string) []error {
	if err := CheckCount(field, len(aliases), MaxAliases); err != nil {
		return []error{err}
	}
	var errs []error
	for j, al := range aliases {
		if err := ValidateServiceName(al); err != nil {
			errs = append(errs, &FieldError{Field: fmt.Sprintf("%s[%d]", field, j), Value: al, Err: err})
		}
	}
	return errs
}

func validateEndpoint(s *ServiceSpec, special string) []error {
	var errs []error
	e := s.Endpoint
	if !slices.Contains([]string{"", EndpointModeVIP, EndpointModeDNSRR}, e.Mode) {
		errs = append(errs, fieldErr("spec.endpoint.mode", e.Mode, "want vip or dnsrr"))
	}
	if err := CheckCount("spec.endpoint.ports", len(e.Ports), MaxPorts); err != nil {
		return append(errs, err)
	}
	published := map[string]int{}
	for i, p := range e.Ports {
		f := fmt.Sprintf("spec.endpoint.ports[%d]", i)
		if p.TargetPort == 0 {
			errs = append(errs, fieldErr(f+".target_port", "0", "missing: want 1 to 65535"))
		}
		if !slices.Contains([]string{"", ProtocolTCP, ProtocolUDP}, p.Protocol) {
			errs = append(errs, fieldErr(f+".protocol", p.Protocol, "want tcp or udp"))
		}
		if !slices.Contains([]string{"", PublishModeIngress, PublishModeHost}, p.PublishMode) {
			errs = append(errs, fieldErr(f+".publish_mode", p.PublishMode, "want ingress or host"))
		}
		if p.Mode() == PublishModeIngress && e.Mode == EndpointModeDNSRR {
			errs = append(errs, fieldErr(f+".publish_mode", p.Mode(), "a dnsrr service has no virtual IP for the routing mesh: publish in host mode or use endpoint mode vip"))
		}
		if p.Mode() == PublishModeIngress && special != "" {
			errs = append(errs, fieldErr(f+".publish_mode", p.Mode(), "a service on network %s cannot publish through the routing mesh: use mode=host", special))
		}
		if p.PublishedPort == 0 {
			continue
		}
		k := p.PortProtocol() + "/" + strconv.Itoa(int(p.PublishedPort))
		if j, dup := published[k]; dup {
			errs = append(errs, fieldErr(f+".published_port", strconv.Itoa(int(p.PublishedPort)), "published twice (also ports[%d])", j))
		}
		published[k] = i
	}
	return errs
}
