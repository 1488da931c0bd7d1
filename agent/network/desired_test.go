package network

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func TestDiffMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		want map[string]string
		have map[string]string
		add  map[string]string
		del  []string
	}{
		{"in sync", map[string]string{"a": "1"}, map[string]string{"a": "1"}, map[string]string{}, nil},
		{"missing", map[string]string{"a": "1", "b": "2"}, map[string]string{"a": "1"}, map[string]string{"b": "2"}, nil},
		{"changed", map[string]string{"a": "2"}, map[string]string{"a": "1"}, map[string]string{"a": "2"}, nil},
		{"extra", map[string]string{}, map[string]string{"b": "1", "a": "1"}, map[string]string{}, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add, del := diffMap(tc.want, tc.have)
			if !reflect.DeepEqual(add, tc.add) || !reflect.DeepEqual(del, tc.del) {
				t.Fatalf("diff = %v, %v; want %v, %v", add, del, tc.add, tc.del)
			}
		})
	}
}

func TestPlanNetworksOnlyRemoteEndpointsOfLocalNetworks(t *testing.T) {
	other := api.Network{ID: "n2", Subnet: "10.78.0.0/24", Gateway: "10.78.0.1", VNI: 7}
	v := &api.NetworkView{Networks: []api.Network{testNet, other}, Endpoints: []api.Endpoint{
		{TaskID: "a", NodeID: "me", NodeAddr: "192.168.1.1", NetworkID: "n1", Addr: "10.77.0.2/24", MAC: "02:42:0a:4d:00:02"},
		{TaskID: "b", NodeID: "peer", NodeAddr: "192.168.1.2", NetworkID: "n1", Addr: "10.77.0.3/24", MAC: "02:42:0a:4d:00:03"},
		{TaskID: "c", NodeID: "peer", NodeAddr: "192.168.1.2", NetworkID: "n2", Addr: "10.78.0.3/24", MAC: "02:42:0a:4e:00:03"},
	}}
	sbs := map[string]Sandbox{"a": {TaskID: "a", Attachments: []api.NetworkAttachment{{NetworkID: "n1"}}}}
	plans, errs := planNetworks(v, sbs, "me")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(plans) != 1 || plans["n1"] == nil {
		t.Fatalf("plans = %v, want n1 only", plans)
	}
	p := plans["n1"]
	if p.Gateway != netip.MustParsePrefix("10.77.0.1/24") {
		t.Errorf("gateway %s", p.Gateway)
	}
	if !reflect.DeepEqual(p.FDB, map[string]string{"02:42:0a:4d:00:03": "192.168.1.2"}) ||
		!reflect.DeepEqual(p.Neigh, map[string]string{"10.77.0.3": "02:42:0a:4d:00:03"}) {
		t.Errorf("fdb %v neigh %v", p.FDB, p.Neigh)
	}
	// A bad entry is left out and reported; the rest is planned.
	v.Endpoints = append(v.Endpoints, api.Endpoint{TaskID: "d", NodeID: "peer", NodeAddr: "192.168.1.3", NetworkID: "n1", Addr: "10.77.0.4/24", MAC: "not-a-mac"})
	plans, errs = planNetworks(v, sbs, "me")
	if len(errs) != 1 || len(plans["n1"].FDB) != 1 {
		t.Errorf("with a bad MAC: plans %v, errs %v; want the good entry planned and one error", plans["n1"].FDB, errs)
	}
}

func TestPlanVIPsRunningBackendsOnSharedNetworks(t *testing.T) {
	v := &api.NetworkView{
		Endpoints: []api.Endpoint{
			{ServiceID: "s1", NetworkID: "n1", Addr: "10.77.0.5/24", Running: true},
			{ServiceID: "s1", NetworkID: "n1", Addr: "10.77.0.4/24", Running: true},
			{ServiceID: "s1", NetworkID: "n1", Addr: "10.77.0.6/24"}, // not running
			{ServiceID: "s2", NetworkID: "n2", Addr: "10.78.0.4/24", Running: true},
		},
		Services: []api.ServiceRoutes{
			{ServiceID: "s1", EndpointMode: api.EndpointModeVIP, VIPs: []api.VIP{{NetworkID: "n1", Addr: "10.77.0.2/24"}}},
			{ServiceID: "s2", EndpointMode: api.EndpointModeVIP, VIPs: []api.VIP{{NetworkID: "n2", Addr: "10.78.0.2/24"}}},
			{ServiceID: "s3", EndpointMode: api.EndpointModeDNSRR},
			{ServiceID: "s4", EndpointMode: api.EndpointModeVIP, VIPs: []api.VIP{{NetworkID: "n1", Addr: "10.77.0.3/24"}}},
		},
	}
	sb := Sandbox{TaskID: "x", Attachments: []api.NetworkAttachment{{NetworkID: "n1"}}}
	got := planVIPs(v, sb, runningBackends(v))
	want := []vipRule{
		{VIP: netip.MustParseAddr("10.77.0.2"), Backends: []netip.Addr{netip.MustParseAddr("10.77.0.4"), netip.MustParseAddr("10.77.0.5")}},
		{VIP: netip.MustParseAddr("10.77.0.3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("vips = %v, want %v", got, want)
	}
	if vipKey(got) == vipKey(want[:1]) {
		t.Error("different rules share a key")
	}
}
