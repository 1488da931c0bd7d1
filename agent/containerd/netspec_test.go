package containerd

import (
	"context"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/shoal-sched/shoal/agent"
)

func applyNetworkOpts(t *testing.T, n agent.ContainerNetwork) *oci.Spec {
	t.Helper()
	s := &oci.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.NetworkNamespace}, {Type: specs.UTSNamespace}}}}
	for _, o := range networkOpts(n) {
		if err := o(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestNetworkOptsJoinTheTasksNamespace(t *testing.T) {
	s := applyNetworkOpts(t, agent.ContainerNetwork{NetNS: "/data/netns/task-t1", ResolvConf: "/data/files/t1/resolv.conf",
		Hosts: "/data/files/t1/hosts", Hostname: "t1"})
	if !slices.Contains(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/data/netns/task-t1"}) {
		t.Errorf("namespaces %v: want the task's network namespace by path", s.Linux.Namespaces)
	}
	if !slices.Contains(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace}) || s.Hostname != "t1" {
		t.Errorf("namespaces %v hostname %q: want a UTS namespace of its own named t1", s.Linux.Namespaces, s.Hostname)
	}
	got := map[string]string{}
	for _, m := range s.Mounts {
		got[m.Destination] = m.Source
	}
	if got["/etc/resolv.conf"] != "/data/files/t1/resolv.conf" || got["/etc/hosts"] != "/data/files/t1/hosts" {
		t.Errorf("mounts %v: want the task's resolv.conf and hosts", got)
	}
}

func TestNetworkOptsHostNetworkByDefault(t *testing.T) {
	s := applyNetworkOpts(t, agent.ContainerNetwork{})
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace || ns.Type == specs.UTSNamespace {
			t.Errorf("a host-network container has its own %s namespace", ns.Type)
		}
	}
}
