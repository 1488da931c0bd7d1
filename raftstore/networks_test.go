package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func testNetwork(id, name, subnet string, vni uint32) *api.Network {
	return &api.Network{ID: id, Spec: api.NetworkSpec{Name: name, Driver: api.NetworkDriverOverlay}, Subnet: subnet, VNI: vni}
}

func TestNetworkCommandsRefuseConflicts(t *testing.T) {
	s := fixture(t)
	if _, _, err := s.apply(0, CreateNetwork{Network: testNetwork("net1", "front", "10.10.1.0/24", 4096)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cmd  Command
		want error
		text string
	}{
		{"same name", CreateNetwork{Network: testNetwork("net2", "front", "10.10.2.0/24", 4097)}, ErrAlreadyExists, `"front"`},
		{"same vni", CreateNetwork{Network: testNetwork("net2", "back", "10.10.2.0/24", 4096)}, ErrConflict, "vni 4096"},
		{"overlap", CreateNetwork{Network: testNetwork("net2", "back", "10.10.0.0/16", 4097)}, ErrConflict, "overlaps network \"front\""},
		{"bad cidr", CreateNetwork{Network: testNetwork("net2", "back", "10.10.300.0/24", 4097)}, ErrInvalid, "10.10.300.0/24"},
		{"unknown", RemoveNetwork{ID: "nope"}, ErrNotFound, "nope"},
	}
	for _, c := range cases {
		_, _, err := s.apply(0, c.cmd)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: err = %v, want %v naming %s", c.name, err, c.want, c.text)
		}
		if ns := s.Read().Networks(); len(ns) != 1 || ns[0].Spec.Name != "front" || ns[0].VNI != 4096 {
			t.Errorf("%s: the refusal changed the state", c.name)
		}
	}
	// A network in use by a service cannot go; the refusal names it.
	spec := s.Read().ServiceByName("web").Spec
	spec.Networks = []api.NetworkAttachmentSpec{{Target: "front"}}
	if _, _, err := s.apply(0, UpdateService{ID: "svc-web", Spec: spec, At: t0}); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.apply(0, RemoveNetwork{ID: "net1"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), `service "web"`) {
		t.Fatalf("remove in use: err = %v", err)
	}
}

func TestAllocateNetworksSetsTaskAddressesOnce(t *testing.T) {
	s := fixture(t)
	first := []api.NetworkAttachment{{NetworkID: "net1", Addr: "10.10.1.3/24", MAC: "02:42:0a:0a:01:03"}}
	cmd := AllocateNetworks{
		Services: []ServiceAllocation{{ServiceID: "svc-web", Endpoint: api.ServiceEndpoint{VIPs: []api.VIP{{NetworkID: "net1", Addr: "10.10.1.2/24"}}}}},
		Tasks:    []TaskAllocation{{TaskID: "t1", Networks: first}, {TaskID: "gone", Networks: first}},
	}
	_, v, err := s.apply(0, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.(AllocateResult); r.Services != 1 || r.Tasks != 1 || !reflect.DeepEqual(r.Skipped, []string{"gone"}) {
		t.Fatalf("result = %+v", r)
	}
	again := AllocateNetworks{Tasks: []TaskAllocation{{TaskID: "t1", Networks: []api.NetworkAttachment{{NetworkID: "net1", Addr: "10.10.1.9/24"}}}}}
	if _, _, err := s.apply(0, again); err != nil {
		t.Fatal(err)
	}
	view := s.Read()
	if got := view.Task("t1").Networks; !reflect.DeepEqual(got, first) {
		t.Errorf("t1 networks = %+v, want the first allocation", got)
	}
	if got := view.Service("svc-web").Endpoint.VIPs; len(got) != 1 || got[0].Addr != "10.10.1.2/24" {
		t.Errorf("VIPs = %+v", got)
	}
}

func TestNetworksSurviveSnapshotAndLog(t *testing.T) {
	s := fixture(t)
	n := testNetwork("net1", "front", "10.10.1.0/24", 4096)
	n.Spec.Labels = map[string]string{"a": "b"}
	if _, _, err := s.apply(0, CreateNetwork{Network: n}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Read().WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	db, _, err := readSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := NewState()
	r.replace(db, 1)
	got := r.Read().NetworkByName("front")
	if got == nil || !reflect.DeepEqual(got, n) {
		t.Fatalf("restored network = %+v, want %+v", got, n)
	}
	for _, c := range []Command{CreateNetwork{Network: n}, RemoveNetwork{ID: "net1"},
		AllocateNetworks{Tasks: []TaskAllocation{{TaskID: "t1", Networks: []api.NetworkAttachment{{NetworkID: "net1", Addr: "10.10.1.3/24"}}}}}} {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		w1, _ := json.Marshal(c)
		w2, _ := json.Marshal(back)
		if !bytes.Equal(w1, w2) {
			t.Errorf("%T round trip: %s != %s", c, w2, w1)
		}
	}
}
