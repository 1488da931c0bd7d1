package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/poll"
)

// whoServer answers each TCP connection on addr, inside the namespace at
// path, with name and the client's address, and closes it.
func whoServer(t testing.TB, path, addr, name string) {
	t.Helper()
	var lis net.Listener
	must(t, inNS(t, path, func() (err error) {
		lis, err = net.Listen("tcp", addr)
		return err
	}))
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = fmt.Fprintf(c, "%s %s", name, host)
			c.Close()
		}
	}()
}

// ask connects from the namespace at path to addr and returns the answer.
func ask(t testing.TB, path, addr string) (string, error) {
	var conn net.Conn
	if err := inNS(t, path, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}

func TestVIPBalancesAcrossHostsKeepingTheClientAddress(t *testing.T) {
	th := newTestHosts(t, 2)
	h0, h1 := th.hosts[0], th.hosts[1]
	client := endpoint(0, h0, "client", true)
	b1, b2 := endpoint(1, h1, "back", true), endpoint(2, h0, "back", true)
	vip := "10.77.0.2"
	view := &api.NetworkView{Version: 1, Networks: []api.Network{testNet},
		Endpoints: []api.Endpoint{client, b1, b2},
		Services: []api.ServiceRoutes{{ServiceID: "back", Name: "back", EndpointMode: api.EndpointModeVIP,
			VIPs: []api.VIP{{NetworkID: testNet.ID, Addr: vip + "/24"}}}}}
	runReconcilers(t, th, view)
	wc, err := h0.r.Attach(t.Context(), sandboxOf(client))
	pc := wc.NetNS
	must(t, err)
	for _, b := range []struct {
		h *testHost
		e api.Endpoint
	}{{h1, b1}, {h0, b2}} {
		w, err := b.h.r.Attach(t.Context(), sandboxOf(b.e))
		p := w.NetNS
		must(t, err)
		whoServer(t, p, strings.TrimSuffix(b.e.Addr, "/24")+":80", b.e.TaskID)
	}
	poll.Until(t, 10*time.Second, func() error { _, err := ask(t, pc, "10.77.0.11:80"); return err })
	poll.Until(t, 10*time.Second, func() error { _, err := ask(t, pc, "10.77.0.12:80"); return err })

	seen := map[string]int{}
	for range 50 {
		ans, err := ask(t, pc, vip+":80")
		must(t, err)
		name, from, _ := strings.Cut(ans, " ")
		if from != "10.77.0.10" {
			t.Fatalf("backend saw the client as %q, want 10.77.0.10 (source kept)", from)
		}
		seen[name]++
	}
	if seen[b1.TaskID] == 0 || seen[b2.TaskID] == 0 {
		t.Fatalf("50 requests through the VIP reached %v, want both backends", seen)
	}

	// The VIP table deleted by hand comes back whole.
	ns := mustOpen(t, pc)
	must(t, deleteTable(ns, tableVIP))
	ns.Close()
	poll.Until(t, 10*time.Second, func() error {
		_, err := ask(t, pc, vip+":80")
		return err
	})

	// The view drops b1 (its host died): every request reaches b2.
	v2 := *view
	v2.Version = 2
	v2.Endpoints = []api.Endpoint{client, b2}
	h0.r.SetView(&v2)
	poll.Until(t, 10*time.Second, func() error {
		for range 20 {
			ans, err := ask(t, pc, vip+":80")
			if err != nil {
				return err
			}
			if !strings.HasPrefix(ans, b2.TaskID+" ") {
				return fmt.Errorf("answer from %q after b1 left the view", ans)
			}
		}
		return nil
	})

	// No backend: the VIP refuses at once.
	v3 := v2
	v3.Version = 3
	v3.Endpoints = []api.Endpoint{client}
	h0.r.SetView(&v3)
	poll.Until(t, 10*time.Second, func() error {
		_, err := ask(t, pc, vip+":80")
		if !errors.Is(err, errConnRefused) && (err == nil || !strings.Contains(err.Error(), "refused")) {
			return fmt.Errorf("VIP with no backend: %v, want connection refused", err)
		}
		return nil
	})
}

var errConnRefused = errors.New("connection refused")
