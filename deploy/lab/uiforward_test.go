package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// listenIn listens on addr inside namespace ns.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	out := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // left locked if the namespace cannot be restored: the thread dies
		orig, err := netns.Get()
		if err != nil {
			out <- result{err: err}
			return
		}
		target, err := netns.GetFromName(ns)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			out <- result{err: err}
			return
		}
		l, err := net.Listen("tcp", addr)
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		out <- result{l, err}
	}()
	r := <-out
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns, r.err)
	}
	return r.l
}

// The UI forward serves, on the root namespace's loopback, what a server
// on a namespace's own loopback answers, dialled from inside it; it
// refuses to listen anywhere but on loopback.
func TestForwardUIDialsInsideTheNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a network namespace: run it as root")
	}
	ns := fmt.Sprintf("shoal-uifwd-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v: %s", ns, err, out)
	}
	inner := listenIn(t, ns, "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inside "+ns) }),
		ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(inner)
	t.Cleanup(func() { srv.Close() })

	if _, err := listenLoopback("0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "loopback address only") {
		t.Fatalf("listen on 0.0.0.0: err %v, want a refusal", err)
	}
	outer, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- forward(ctx, outer, func() (net.Conn, error) { return dialIn(ns, inner.Addr().String()) })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forward: %v", err)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + outer.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "inside "+ns {
		t.Fatalf("forwarded answer %q, want %q", body, "inside "+ns)
	}
	client.CloseIdleConnections()
}
