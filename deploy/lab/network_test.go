package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// httpdCommand serves the task's hostname (its task ID's first 12
// characters) at / and a 1,400-byte file at /big.
const httpdCommand = `mkdir -p /www && hostname > /www/index.html && head -c 1400 /dev/zero | tr '\0' x > /www/big && exec httpd -f -p 80 -h /www`

func netService(name string, replicas uint64, ports ...api.PortConfig) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: "shop_" + name, Labels: map[string]string{api.LabelStack: "shop"},
		Image: "", Command: []string{"sh", "-c", httpdCommand},
		Resources: api.ResourceRequirements{Reservations: api.Resources{MemoryBytes: 16 << 20, NanoCPUs: 50_000_000}},
		Mode:      api.ModeReplicated, Replicas: replicas,
		Placement: api.Placement{MaxReplicasPerNode: 1},
		Networks:  []api.NetworkAttachmentSpec{{Target: "shop_default"}},
		Endpoint:  api.EndpointSpec{Ports: ports},
	}
}

// TestLabNetworks: a 3-service stack on the overlay across 3 agent hosts.
// From a front-end container, back and tasks.back resolve and answer
// across hosts, the VIP reaches both back-end replicas, a 1,400-byte reply
// crosses, 8080 answers on every agent host from another lab namespace,
// and after kill -9 of a back-end host the VIP reaches the replacement.
func TestLabNetworks(t *testing.T) {
	requireLabHost(t)
	cfg := Config{Dir: t.TempDir(), Prefix: fmt.Sprintf("sln%d-", os.Getpid()%100000), BinDir: buildBinaries(t)}
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	t.Cleanup(func() {
		if err := Down(cfg, t.Logf); err != nil {
			t.Errorf("lab down: %v", err)
		}
		assertNothingLeft(t, cfg)
	})
	l, err := Up(ctx, cfg, t.Logf)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	c, err := l.dialManagers(true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	deployShop(ctx, t, l, c)
	hosts := nodeHosts(ctx, t, c, l)

	front := runningTasks(ctx, t, c, "shop_front")
	back := runningTasks(ctx, t, c, "shop_back")
	checkNamesAndVIP(ctx, t, l, hosts, front, back)
	checkMesh(t, l)
	testVIPAfterHostKill(ctx, t, l, c, hosts, back)
	if err := l.waitNodesReady(ctx, 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	testAgentRestartKeepsTheNetwork(ctx, t, l, c, hosts)
	measureCreateOnOverlay(ctx, t, l, c, hosts)
	testNetworkCleanup(ctx, t, l, c)
}

// testAgentRestartKeepsTheNetwork restarts the agent of a front-end
// container's host: the container keeps running, and once the agent is
// back its embedded DNS answers again and the VIP still works.
func testAgentRestartKeepsTheNetwork(ctx context.Context, t *testing.T, l *Lab, c *client, hosts map[string]*Host) {
	client := runningTasks(ctx, t, c, "shop_front")[0]
	h := hosts[client.GetNodeId()]
	if err := l.RestartAgent(ctx, h.Name, 0); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 20*time.Second, func() error {
		_, err := wgetErr(ctx, l, h, client.GetId(), "http://back/")
		return err
	}); err != nil {
		t.Fatalf("after the agent on %s restarted: %v", h.Name, err)
	}
	if st := runningTasks(ctx, t, c, "shop_front"); !slices.ContainsFunc(st, func(x *shoalpb.Task) bool { return x.GetId() == client.GetId() }) {
		t.Fatalf("the front-end task %s is no longer running after its agent restarted", client.GetId())
	}
}

// measureCreateOnOverlay logs how long 6 replicas take to run and resolve
// by name on the overlay, beside the same create on the host network.
func measureCreateOnOverlay(ctx context.Context, t *testing.T, l *Lab, c *client, hosts map[string]*Host) {
	client := runningTasks(ctx, t, c, "shop_front")[0]
	for _, overlay := range []bool{false, true} {
		s := netService("six", 6)
		s.Name, s.Command, s.Placement = "hostsix", []string{"sleep", "3600"}, api.Placement{}
		if overlay {
			s.Name = "shop_six"
		} else {
			s.Networks = nil
		}
		s.Image = l.Image()
		t0 := time.Now()
		createService(ctx, t, c, s)
		err := waitFor(ctx, 60*time.Second, func() error {
			tasks, err := c.tasks(ctx, s.Name)
			if err != nil {
				return err
			}
			if _, ok := converged(tasks, 6, ""); !ok {
				return errors.New("not all 6 running")
			}
			if overlay {
				if ips, err := lookupErr(ctx, l, hosts[client.GetNodeId()], client.GetId(), "tasks.six"); err != nil || len(ips) != 6 {
					return fmt.Errorf("tasks.six resolves to %d addresses (%v)", len(ips), err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("create of 6 replicas (overlay %v) → all running%s: %s", overlay,
			map[bool]string{true: " and resolved by name"}[overlay], time.Since(t0).Round(time.Millisecond))
	}
}

func createService(ctx context.Context, t *testing.T, c *client, s *api.ServiceSpec) {
	t.Helper()
	err := c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
		_, err := ctl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: shoalpb.FromServiceSpec(s)})
		return err
	})
	if err != nil {
		t.Fatalf("service create %s: %v", s.Name, err)
	}
}

// testNetworkCleanup removes every service: each agent host's task and
// network namespaces go.
func testNetworkCleanup(ctx context.Context, t *testing.T, l *Lab, c *client) {
	for _, svc := range []string{"shop_front", "shop_back", "shop_store", "shop_six", "hostsix"} {
		err := c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
			_, err := ctl.RemoveService(ctx, &shoalpb.RemoveServiceRequest{Service: svc})
			return err
		})
		if err != nil {
			t.Fatalf("service rm %s: %v", svc, err)
		}
	}
	for _, h := range l.ByRole(RoleAgent) {
		dir := filepath.Join(h.Dir(l), "agent", "netns")
		if err := waitFor(ctx, 60*time.Second, func() error {
			ents, err := os.ReadDir(dir)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			var left []string
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "task-") || strings.HasPrefix(e.Name(), "net-") {
					left = append(left, e.Name())
				}
			}
			if len(left) > 0 {
				return fmt.Errorf("%s still has namespaces %v", h.Name, left)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkNamesAndVIP: from a front-end container, back answers through the
// VIP from both replicas over 50 requests, tasks.back lists both and each
// answers, and a 1,400-byte reply crosses from every host.
func checkNamesAndVIP(ctx context.Context, t *testing.T, l *Lab, hosts map[string]*Host, front, back []*shoalpb.Task) {
	t.Helper()
	client := front[0]
	backNames := map[string]bool{}
	for _, b := range back {
		backNames[b.GetId()[:12]] = true
	}

	// A task is running once its process starts; the client's host learns
	// of it a moment later (and httpd listens a moment after it starts), so
	// the first answer is awaited, and that wait is logged.
	t0 := time.Now()
	if err := waitFor(ctx, 15*time.Second, func() error {
		if _, err := wgetErr(ctx, l, hosts[client.GetNodeId()], client.GetId(), "http://back/"); err != nil {
			return err
		}
		if ips, err := lookupErr(ctx, l, hosts[client.GetNodeId()], client.GetId(), "tasks.back"); err != nil || len(ips) != 2 {
			return fmt.Errorf("tasks.back resolves to %v (%v), want 2 addresses", ips, err)
		}
		return nil
	}); err != nil {
		t.Fatalf("back through the VIP from %s: %v", hosts[client.GetNodeId()].Name, err)
	}
	t.Logf("back-end replicas running → first answer through the VIP: %s", time.Since(t0).Round(time.Millisecond))

	// By name, across hosts, through the VIP: both replicas over 50 requests.
	seen := map[string]int{}
	for range 50 {
		out := wget(ctx, t, l, hosts[client.GetNodeId()], client.GetId(), "http://back/")
		if !backNames[out] {
			t.Fatalf("wget back answered %q, want one of %v", out, backNames)
		}
		seen[out]++
	}
	if len(seen) != 2 {
		t.Fatalf("50 requests through the VIP reached %v, want both back-end replicas", seen)
	}
	// tasks.back is the replicas' own addresses, and each answers.
	ips := lookupIn(ctx, t, l, hosts[client.GetNodeId()], client.GetId(), "tasks.back")
	if len(ips) != 2 {
		t.Fatalf("tasks.back = %v, want 2 addresses", ips)
	}
	for _, ip := range ips {
		if out := wget(ctx, t, l, hosts[client.GetNodeId()], client.GetId(), "http://"+ip+"/"); !backNames[out] {
			t.Fatalf("wget %s answered %q", ip, out)
		}
	}
	// MTU: a 1,400-byte reply crosses hosts (front replicas on every host).
	for _, f := range front {
		if out := wget(ctx, t, l, hosts[f.GetNodeId()], f.GetId(), "http://back/big"); len(out) != 1400 {
			t.Fatalf("wget back/big from %s: %d bytes, want 1400", hosts[f.GetNodeId()].Name, len(out))
		}
	}
}

// checkMesh: 8080 answers on every agent host, from the registry's
// namespace (another lab host).
func checkMesh(t *testing.T, l *Lab) {
	t.Helper()
	// The routing mesh: 8080 on every agent host, from the registry's namespace.
	from := l.ByRole(RoleRegistry)[0]
	for _, h := range l.ByRole(RoleAgent) {
		got := httpGetFrom(t, from.NS, h.IP+":8080")
		if len(got) != 12 {
			t.Fatalf("8080 on %s answered %q", h.Name, got)
		}
	}
}

func deployShop(ctx context.Context, t *testing.T, l *Lab, c *client) {
	t.Helper()
	err := c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
		_, err := ctl.CreateNetwork(ctx, &shoalpb.CreateNetworkRequest{Spec: shoalpb.FromNetworkSpec(api.NetworkSpec{Name: "shop_default", Driver: api.NetworkDriverOverlay})})
		return err
	})
	if err != nil {
		t.Fatalf("network create: %v", err)
	}
	for _, s := range []*api.ServiceSpec{
		netService("back", 2), netService("store", 1),
		netService("front", 3, api.PortConfig{Protocol: api.ProtocolTCP, TargetPort: 80, PublishedPort: 8080, PublishMode: api.PublishModeIngress}),
	} {
		s.Image = l.Image()
		createService(ctx, t, c, s)
	}
	for svc, n := range map[string]int{"shop_back": 2, "shop_store": 1, "shop_front": 3} {
		if err := waitFor(ctx, 90*time.Second, func() error {
			tasks, err := c.tasks(ctx, svc)
			if err != nil {
				return err
			}
			if _, ok := converged(tasks, n, ""); !ok {
				return fmt.Errorf("%s: not all %d replicas running", svc, n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// testVIPAfterHostKill kills -9 an agent host with a back-end replica and
// not the client, then, once the replacement runs, wants 20 consecutive
// VIP requests to succeed.
func testVIPAfterHostKill(ctx context.Context, t *testing.T, l *Lab, c *client, hosts map[string]*Host, back []*shoalpb.Task) {
	victim := hosts[back[0].GetNodeId()]
	var client *shoalpb.Task
	for _, f := range runningTasks(ctx, t, c, "shop_front") {
		if hosts[f.GetNodeId()] != victim {
			client = f
			break
		}
	}
	if _, err := l.Kill(victim.Name); err != nil {
		t.Fatal(err)
	}
	var replaced time.Time
	if err := waitFor(ctx, 60*time.Second, func() error {
		tasks, err := c.tasks(ctx, "shop_back")
		if err != nil {
			return err
		}
		if _, ok := converged(tasks, 2, back[0].GetNodeId()); !ok {
			return errors.New("the replacement back-end replica does not run yet")
		}
		replaced = time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h := hosts[client.GetNodeId()]
	err := waitFor(ctx, 10*time.Second, func() error {
		for i := range 20 {
			if _, err := wgetErr(ctx, l, h, client.GetId(), "http://back/"); err != nil {
				return fmt.Errorf("request %d of 20 through the VIP: %w", i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replacement running → 20 consecutive VIP requests done: %s", time.Since(replaced).Round(time.Millisecond))
	if err := l.Restore(ctx, victim.Name); err != nil {
		t.Fatal(err)
	}
}

func runningTasks(ctx context.Context, t *testing.T, c *client, svc string) []*shoalpb.Task {
	t.Helper()
	tasks, err := c.tasks(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	var out []*shoalpb.Task
	for _, tk := range tasks {
		if tk.GetStatus().GetState() == "running" && tk.GetDesiredState() == "running" {
			out = append(out, tk)
		}
	}
	slices.SortFunc(out, func(a, b *shoalpb.Task) int { return strings.Compare(a.GetId(), b.GetId()) })
	return out
}

func nodeHosts(ctx context.Context, t *testing.T, c *client, l *Lab) map[string]*Host {
	t.Helper()
	nodes, err := c.nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Host{}
	for _, n := range nodes {
		for _, h := range l.Hosts {
			if h.Name == n.GetHostname() {
				out[n.GetId()] = h
			}
		}
	}
	return out
}

// containerPID reads the init PID of a task's container from runc's state.
func containerPID(l *Lab, h *Host, taskID string) (int, error) {
	b, err := os.ReadFile(filepath.Join("/run/containerd/runc", l.ContainerdNamespace(h), taskID, "state.json"))
	if err != nil {
		return 0, err
	}
	var st struct {
		PID int `json:"init_process_pid"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, err
	}
	return st.PID, nil
}

// inContainer runs the container's own busybox inside its namespaces
// (network, mount, UTS): its resolv.conf, its embedded DNS.
func inContainer(ctx context.Context, l *Lab, h *Host, taskID string, args ...string) (string, error) {
	pid, err := containerPID(l, h, taskID)
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", "-m", "-u", "--"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", err
	}
	return string(out), nil
}

func wgetErr(ctx context.Context, l *Lab, h *Host, taskID, url string) (string, error) {
	// No -T: Debian's static busybox wget crashes with it; inContainer
	// bounds the call instead.
	out, err := inContainer(ctx, l, h, taskID, "wget", "-q", "-O", "-", url)
	return strings.TrimSpace(out), err
}

func wget(ctx context.Context, t *testing.T, l *Lab, h *Host, taskID, url string) string {
	t.Helper()
	out, err := wgetErr(ctx, l, h, taskID, url)
	if err != nil {
		t.Fatalf("from task %s on %s: %v", taskID, h.Name, err)
	}
	return out
}

// lookupIn resolves name with the container's nslookup (its embedded DNS).
func lookupIn(ctx context.Context, t *testing.T, l *Lab, h *Host, taskID, name string) []string {
	t.Helper()
	ips, err := lookupErr(ctx, l, h, taskID, name)
	if err != nil {
		t.Fatalf("nslookup %s: %v", name, err)
	}
	return ips
}

func lookupErr(ctx context.Context, l *Lab, h *Host, taskID, name string) ([]string, error) {
	out, err := inContainer(ctx, l, h, taskID, "busybox", "nslookup", name)
	if err != nil {
		return nil, err
	}
	var ips []string
	answers := false
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Name:") {
			answers = true
		}
		if f := strings.Fields(line); answers && len(f) >= 2 && f[0] == "Address:" {
			if ip := net.ParseIP(strings.Split(f[1], "#")[0]); ip != nil && ip.To4() != nil {
				ips = append(ips, ip.String())
			}
		}
	}
	return ips, nil
}

// httpGetFrom sends GET / to addr from inside the lab namespace ns.
func httpGetFrom(t *testing.T, ns, addr string) string {
	t.Helper()
	var conn net.Conn
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // left locked if the namespace cannot be restored: the thread dies
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		target, err := netns.GetFromPath("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.0\r\n\r\n")
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(b), "\r\n\r\n")
	return strings.TrimSpace(body)
}
