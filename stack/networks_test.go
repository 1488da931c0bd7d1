package stack

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func TestNetworksAndPorts(t *testing.T) {
	st := mustLoad(t, Options{Name: "shop", Files: []string{"testdata/networks/compose.yaml"}})
	if len(st.Warnings) != 0 {
		t.Errorf("warnings %v, want none: these keys are honoured", st.Warnings)
	}
	byName := map[string]*api.ServiceSpec{}
	for _, s := range st.Services {
		byName[s.Name] = s
	}
	front := byName["shop_front"]
	wantNets := []api.NetworkAttachmentSpec{{Target: "common"}, {Target: "shop_web", Aliases: []string{"www"}}}
	if !reflect.DeepEqual(front.Networks, wantNets) {
		t.Errorf("front networks %+v, want %+v", front.Networks, wantNets)
	}
	wantPorts := []api.PortConfig{
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress"},
		{Protocol: "udp", TargetPort: 53, PublishedPort: 53, PublishMode: "ingress"},
		{Protocol: "tcp", TargetPort: 443, PublishedPort: 8443, PublishMode: "host"},
	}
	if !reflect.DeepEqual(front.Endpoint.Ports, wantPorts) {
		t.Errorf("front ports %+v, want %+v", front.Endpoint.Ports, wantPorts)
	}
	back := byName["shop_back"]
	if !reflect.DeepEqual(back.Networks, []api.NetworkAttachmentSpec{{Target: "shop_default"}}) || back.Endpoint.Mode != api.EndpointModeDNSRR {
		t.Errorf("back networks %+v mode %q, want shop_default and dnsrr", back.Networks, back.Endpoint.Mode)
	}
	if got := byName["shop_agent"].Networks; !reflect.DeepEqual(got, []api.NetworkAttachmentSpec{{Target: "host"}}) {
		t.Errorf("agent networks %+v, want host", got)
	}
	wantOwn := []api.NetworkSpec{
		{Name: "shop_default", Driver: "overlay", Labels: map[string]string{api.LabelStack: "shop"}},
		{Name: "shop_web", Driver: "overlay", Subnet: "10.20.0.0/24", Attachable: true, Internal: true,
			Labels: map[string]string{api.LabelStack: "shop", "team": "web"}},
	}
	if !reflect.DeepEqual(st.Networks, wantOwn) {
		t.Errorf("stack networks %+v, want %+v", st.Networks, wantOwn)
	}
	if !reflect.DeepEqual(st.ExternalNetworks, []string{"common"}) {
		t.Errorf("external %v, want [common]", st.ExternalNetworks)
	}
}

func TestBadNetworkValues(t *testing.T) {
	for name, yaml := range map[string]string{
		`networks.web "st_web"`:                                 "services: {web: {image: busybox, networks: [web]}}\nnetworks: {web: {ipam: {config: [{subnet: 10.20.0.1/24}]}}}\n",
		`services.web.ports[0].published "8080-8081"`:           "services: {web: {image: busybox, ports: ['8080-8081:80']}}\n",
		`services.web.endpoint.ports[0].publish_mode "ingress"`: "services: {web: {image: busybox, ports: ['80'], deploy: {endpoint_mode: dnsrr}}}\n",
	} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "compose.yaml"), yaml)
		_, err := load(t, Options{Files: []string{filepath.Join(dir, "compose.yaml")}})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
