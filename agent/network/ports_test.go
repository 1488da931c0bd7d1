package network

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

func TestRoutingMeshAnswersOnEveryHost(t *testing.T) {
	th := newTestHosts(t, 3)
	h0, h1, client := th.hosts[0], th.hosts[1], th.hosts[2]
	ingress := testNet
	ingress.Ingress = true
	r1, r2 := endpoint(1, h0, "web", true), endpoint(2, h1, "web", true)
	view := &api.NetworkView{Version: 1, Networks: []api.Network{ingress}, Endpoints: []api.Endpoint{r1, r2},
		Services: []api.ServiceRoutes{{ServiceID: "web", Name: "web", EndpointMode: api.EndpointModeVIP,
			Ports: []api.PortConfig{
				{Protocol: api.ProtocolTCP, TargetPort: 80, PublishedPort: 8080, PublishMode: api.PublishModeIngress},
				{Protocol: api.ProtocolTCP, TargetPort: 80, PublishedPort: 9090, PublishMode: api.PublishModeHost},
			}}}}
	runReconcilers(t, &testHosts{t: t, hosts: th.hosts[:2]}, view)
	for _, b := range []struct {
		h *testHost
		e api.Endpoint
	}{{h0, r1}, {h1, r2}} {
		w, err := b.h.r.Attach(t.Context(), sandboxOf(b.e))
		must(t, err)
		whoServer(t, w.NetNS, ":80", b.e.TaskID)
	}
	for _, h := range []*testHost{h0, h1} {
		addr := h.ip.String() + ":8080"
		// Ready once both hosts have written their tables: requests in a
		// row answer, from both replicas.
		poll.Until(t, 10*time.Second, func() error {
			names := map[string]bool{}
			for range 4 {
				ans, err := ask(t, client.ns, addr)
				if err != nil {
					return err
				}
				name, _, _ := strings.Cut(ans, " ")
				names[name] = true
			}
			if len(names) < 2 {
				return fmt.Errorf("only %v answered so far", names)
			}
			return nil
		})
		seen := map[string]int{}
		for i := range 20 {
			ans, err := ask(t, client.ns, addr)
			if err != nil {
				t.Fatalf("request %d to %s (after %v): %v", i, addr, seen, err)
			}
			name, _, _ := strings.Cut(ans, " ")
			seen[name]++
		}
		if seen[r1.TaskID] == 0 || seen[r2.TaskID] == 0 {
			t.Fatalf("20 requests to %s reached %v, want both replicas", addr, seen)
		}
	}
	// Host mode: only the local replica, and it sees the client's address.
	for _, c := range []struct {
		h    *testHost
		want string
	}{{h0, r1.TaskID}, {h1, r2.TaskID}} {
		for range 5 {
			ans, err := ask(t, client.ns, c.h.ip.String()+":9090")
			must(t, err)
			if want := fmt.Sprintf("%s %s", c.want, client.ip); ans != want {
				t.Fatalf("host-mode port on %s answered %q, want %q", c.h.name, ans, want)
			}
		}
	}
}
