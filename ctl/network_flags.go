package ctl

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoal-sched/shoal/api"
)

// netFlags are the networking flags of `service create` and `update`.
type netFlags struct {
	networks, networkAdd, networkRm []string
	publish, publishAdd, publishRm  []string
	endpointMode                    string
}

func (f *netFlags) register(fs *pflag.FlagSet, update bool) {
	if update {
		fs.StringArrayVar(&f.networkAdd, "network-add", nil, "join a network: NAME[,alias=A] (repeatable)")
		fs.StringArrayVar(&f.networkRm, "network-rm", nil, "leave a network, by name (repeatable)")
		fs.StringArrayVar(&f.publishAdd, "publish-add", nil, "publish a port: published=8080,target=80[,mode=ingress|host][,protocol=tcp|udp] or 8080:80[/udp] (repeatable)")
		fs.StringArrayVar(&f.publishRm, "publish-rm", nil, "stop publishing a port: PUBLISHED[/PROTOCOL] or TARGET (repeatable)")
	} else {
		fs.StringArrayVar(&f.networks, "network", nil,
			"join a network: NAME[,alias=A] (repeatable); host shares the agent host's namespace (the default without networks and ports), none gives loopback only")
		fs.StringArrayVarP(&f.publish, "publish", "p", nil,
			"publish a port: published=8080,target=80[,mode=ingress|host][,protocol=tcp|udp] or 8080:80[/udp]; without a published port one is chosen from 30000-32767 (repeatable)")
	}
	fs.StringVar(&f.endpointMode, "endpoint-mode", "", "how the service is reached: vip (one virtual IP, the default) or dnsrr (the replicas' IPs)")
}

// applyCreate sets the networking of a new spec.
func (f *netFlags) applyCreate(changed func(string) bool, s *api.ServiceSpec) []error {
	var errs []error
	for _, v := range f.networks {
		a, err := parseNetworkFlag("--network", v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Networks = append(s.Networks, a)
	}
	for _, v := range f.publish {
		p, err := parsePublish("--publish", v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Endpoint.Ports = append(s.Endpoint.Ports, p)
	}
	return append(errs, f.applyMode(changed, s)...)
}

// applyUpdate changes the networking of s as the -add/-rm flags say.
func (f *netFlags) applyUpdate(changed func(string) bool, s *api.ServiceSpec) []error {
	var errs []error
	s.Networks = slices.DeleteFunc(s.Networks, func(a api.NetworkAttachmentSpec) bool { return slices.Contains(f.networkRm, a.Target) })
	for _, v := range f.networkAdd {
		a, err := parseNetworkFlag("--network-add", v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Networks = slices.DeleteFunc(s.Networks, func(o api.NetworkAttachmentSpec) bool { return o.Target == a.Target })
		s.Networks = append(s.Networks, a)
	}
	for _, v := range f.publishRm {
		ports, err := removePort(s.Endpoint.Ports, v)
		if err != nil {
			errs = append(errs, err)
		}
		s.Endpoint.Ports = ports
	}
	for _, v := range f.publishAdd {
		p, err := parsePublish("--publish-add", v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.Endpoint.Ports = append(s.Endpoint.Ports, p)
	}
	return append(errs, f.applyMode(changed, s)...)
}

func (f *netFlags) applyMode(changed func(string) bool, s *api.ServiceSpec) []error {
	if !changed("endpoint-mode") {
		return nil
	}
	switch f.endpointMode {
	case api.EndpointModeVIP, api.EndpointModeDNSRR:
		s.Endpoint.Mode = f.endpointMode
		return nil
	}
	return []error{fieldErr("--endpoint-mode", f.endpointMode, "want vip or dnsrr")}
}

// parseNetworkFlag reads NAME[,alias=A...] (or name=NAME,alias=A, as
// docker's long form).
func parseNetworkFlag(flag, v string) (api.NetworkAttachmentSpec, error) {
	var a api.NetworkAttachmentSpec
	for i, part := range strings.Split(v, ",") {
		key, val, kv := strings.Cut(part, "=")
		switch {
		case !kv && i == 0:
			a.Target = part
		case kv && (key == "name" || key == "target"):
			a.Target = val
		case kv && key == "alias":
			a.Aliases = append(a.Aliases, val)
		default:
			return a, fieldErr(flag, v, "unknown part %q: want NAME[,alias=A]", part)
		}
	}
	if a.Target == "" {
		return a, fieldErr(flag, v, "no network name: want NAME[,alias=A]")
	}
	return a, nil
}

// parsePublish reads a port in the long form
// (published=8080,target=80,mode=host,protocol=udp) or the short one
// (8080:80, 8080:80/udp, or 80 alone for a dynamic published port).
func parsePublish(flag, v string) (api.PortConfig, error) {
	if strings.Contains(v, "=") {
		return parsePublishLong(flag, v)
	}
	var p api.PortConfig
	ports, proto, hasProto := strings.Cut(v, "/")
	if hasProto {
		p.Protocol = proto
	}
	pub, target, both := strings.Cut(ports, ":")
	if !both {
		target, pub = pub, ""
	}
	var err error
	if p.TargetPort, err = portNumber(target, false); err != nil {
		return p, fieldErr(flag, v, "target port %q: %v (want [PUBLISHED:]TARGET[/PROTOCOL])", target, err)
	}
	if p.PublishedPort, err = portNumber(pub, true); err != nil {
		return p, fieldErr(flag, v, "published port %q: %v (want [PUBLISHED:]TARGET[/PROTOCOL])", pub, err)
	}
	return p, nil
}

func parsePublishLong(flag, v string) (api.PortConfig, error) {
	var p api.PortConfig
	var errs []error
	for _, part := range strings.Split(v, ",") {
		key, val, _ := strings.Cut(part, "=")
		var err error
		switch key {
		case "published":
			p.PublishedPort, err = portNumber(val, true)
		case "target":
			p.TargetPort, err = portNumber(val, false)
		case "mode":
			p.PublishMode = val
		case "protocol":
			p.Protocol = val
		default:
			err = fmt.Errorf("unknown key %q (want published, target, mode, protocol)", key)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
		}
	}
	if p.TargetPort == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("target=PORT missing"))
	}
	if len(errs) > 0 {
		return p, &api.FieldError{Field: flag, Value: v, Err: errors.Join(errs...)}
	}
	return p, nil
}

// portNumber reads 1..65535 (0 or empty too when zeroOK).
func portNumber(s string, zeroOK bool) (uint16, error) {
	if s == "" && zeroOK {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("want a port number 1 to 65535")
	}
	return uint16(n), nil
}

// removePort drops the ports --publish-rm names: PUBLISHED[/PROTOCOL]
// (as docker), or a target port of a port with no published number.
func removePort(ports []api.PortConfig, v string) ([]api.PortConfig, error) {
	num, proto, _ := strings.Cut(v, "/")
	n, err := portNumber(num, false)
	if err != nil {
		return ports, fieldErr("--publish-rm", v, "%v (want PUBLISHED[/PROTOCOL])", err)
	}
	return slices.DeleteFunc(ports, func(p api.PortConfig) bool {
		match := p.PublishedPort == n || (p.PublishedPort == 0 && p.TargetPort == n)
		return match && (proto == "" || p.PortProtocol() == proto)
	}), nil
}
