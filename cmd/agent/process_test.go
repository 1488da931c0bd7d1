package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// proc is one process the test started; it is ended by PID.
type proc struct {
	name string
	// dir, env, bin and args are how it was started (restart uses them).
	dir, bin  string
	env, args []string
	cmd       *exec.Cmd
	log       string
	done      chan struct{} // closed when the process has exited
	err       error         // how it exited, once done is closed
}

// buildBinaries builds shoal-manager and shoal-agent into dir.
func buildBinaries(t testing.TB, dir string) (manager, agent string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the binaries needs the go command in PATH: %v", err)
	}
	for _, b := range []struct{ out, pkg string }{
		{filepath.Join(dir, "shoal-manager"), "github.com/shoal-sched/shoal/cmd/manager"},
		{filepath.Join(dir, "shoal-agent"), "github.com/shoal-sched/shoal/cmd/agent"},
	} {
		out, err := exec.CommandContext(t.Context(), goBin, "build", "-o", b.out, b.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return filepath.Join(dir, "shoal-manager"), filepath.Join(dir, "shoal-agent")
}

// freeAddr returns a loopback address with a port that was free a moment
// ago (the processes bind it themselves).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProc starts bin with args (and env added to this process's).
func startProc(t testing.TB, dir, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, dir: dir, bin: bin, env: env, args: args, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if t.Failed() {
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(string(b), "\n")
		t.Logf("last lines of %s:\n%s", p.name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
	}
}

// restart starts an exited process again, as it was started, under the
// same name (its log starts over).
func (p *proc) restart(t testing.TB) *proc {
	t.Helper()
	<-p.done
	return startProc(t, p.dir, p.name, p.env, p.bin, p.args...)
}

// kill9 ends the process with SIGKILL and waits for it.
func (p *proc) kill9(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", p.name, p.cmd.Process.Pid, err)
	}
	<-p.done
}

// sockets maps a manager's gRPC address to its control socket: the
// tests drive the managers as root on their host does, through the
// socket, since TCP takes mutual TLS.
var sockets sync.Map

func control(t testing.TB, addr string) shoalpb.ControlClient {
	t.Helper()
	target := addr
	if sock, ok := sockets.Load(addr); ok {
		target = "unix://" + sock.(string)
	}
	// Listing 10,000 tasks takes more than gRPC's default 4 MiB.
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return shoalpb.NewControlClient(conn)
}

func call[T any](t testing.TB, f func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	return f(ctx)
}

// runningByNode counts the running tasks of a service per node.
func runningByNode(t testing.TB, c shoalpb.ControlClient, svc string) (map[string]int, error) {
	resp, err := call(t, func(ctx context.Context) (*shoalpb.ListTasksResponse, error) {
		return c.ListTasks(ctx, &shoalpb.ListTasksRequest{Service: svc})
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, tk := range resp.GetTasks() {
		if tk.GetStatus().GetState() == "running" && tk.GetDesiredState() == "running" {
			out[tk.GetNodeId()]++
		}
	}
	return out, nil
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// startManagers runs three shoal-manager processes on loopback, the first
// bootstrapping and the others joining it, with env and args added, and
// waits until each is recorded. It returns them and their gRPC addresses.
func startManagers(t testing.TB, dir, bin string, env []string, args ...string) ([]*proc, []string) {
	t.Helper()
	return startManagersWith(t, dir, bin, env, func(int) []string { return args })
}

// startManagersWith is startManagers with arguments of their own for each.
func startManagersWith(t testing.TB, dir, bin string, env []string, argsOf func(i int) []string) ([]*proc, []string) {
	t.Helper()
	var procs []*proc
	var addrs []string
	for i := range 3 {
		addr := freeAddr(t)
		dataDir := filepath.Join(dir, fmt.Sprintf("m%d", i))
		sockets.Store(addr, filepath.Join(dataDir, "control.sock"))
		a := append([]string{
			"--data-dir", dataDir, "--addr", addr, "--raft-addr", freeAddr(t),
			// The test's images are names only: no registry to resolve them in.
			"--resolve-images=false",
		}, argsOf(i)...)
		if i > 0 {
			a = append(a, "--join", addrs[0], "--token", joinTokens(t, addrs[0]).GetManager())
		}
		procs = append(procs, startProc(t, dir, fmt.Sprintf("manager-%d", i), env, bin, a...))
		addrs = append(addrs, addr)
		c := control(t, addr)
		managertest.WaitFor(t, 30*time.Second, func() error {
			st, err := call(t, func(ctx context.Context) (*shoalpb.ClusterStatusResponse, error) {
				return c.ClusterStatus(ctx, &shoalpb.ClusterStatusRequest{})
			})
			if err == nil && (len(st.GetManagers()) != i+1 || st.GetLeaderAddr() == "") {
				err = fmt.Errorf("%d managers, leader %q", len(st.GetManagers()), st.GetLeaderAddr())
			}
			return err
		})
	}
	return procs, addrs
}

// joinTokens waits until the manager at addr has the cluster's CA and
// returns its join tokens.
func joinTokens(t testing.TB, addr string) *shoalpb.JoinTokens {
	t.Helper()
	c := control(t, addr)
	var toks *shoalpb.JoinTokens
	managertest.WaitFor(t, 30*time.Second, func() error {
		var err error
		toks, err = call(t, func(ctx context.Context) (*shoalpb.JoinTokens, error) {
			return c.GetJoinTokens(ctx, &shoalpb.GetJoinTokensRequest{})
		})
		return err
	})
	return toks
}

// waitReady waits until every named agent's node is ready and returns the
// hostname of each node id.
func waitReady(t testing.TB, c shoalpb.ControlClient, agents map[string]*proc) map[string]string {
	t.Helper()
	hostOf := map[string]string{}
	managertest.WaitFor(t, 30*time.Second, func() error {
		resp, err := call(t, func(ctx context.Context) (*shoalpb.ListNodesResponse, error) {
			return c.ListNodes(ctx, &shoalpb.ListNodesRequest{})
		})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range resp.GetNodes() {
			hostOf[n.GetNode().GetId()] = n.GetNode().GetHostname()
			if n.GetNode().GetStatus() == "ready" && agents[n.GetNode().GetHostname()] != nil {
				ready++
			}
		}
		if ready != len(agents) {
			return fmt.Errorf("%d agent nodes ready, want %d", ready, len(agents))
		}
		return nil
	})
	return hostOf
}

// waitReplicas waits until n replicas of service web run, none of them on
// node off, and returns how many run on each node.
func waitReplicas(t testing.TB, c shoalpb.ControlClient, n int, off string) map[string]int {
	t.Helper()
	var now map[string]int
	managertest.WaitFor(t, 30*time.Second, func() error {
		var err error
		now, err = runningByNode(t, c, "web")
		switch {
		case err != nil:
			return err
		case off != "" && now[off] != 0:
			return fmt.Errorf("%d replicas still running on node %s", now[off], off)
		case total(now) != n:
			return fmt.Errorf("%d of %d replicas running: %v", total(now), n, now)
		}
		return nil
	})
	return now
}

// TestProcesses runs the real binaries on loopback: three shoal-manager,
// three shoal-agent --runtime fake; a service of 6 replicas runs; one
// agent is killed with SIGKILL; its replicas run again on the others.
func TestProcesses(t *testing.T) {
	dir := t.TempDir()
	managerBin, agentBin := buildBinaries(t, dir)
	_, mgrAddrs := startManagers(t, dir, managerBin, nil, "--gossip-addr", "127.0.0.1:0", "--log-level", "debug",
		"--raft-heartbeat-timeout", "300ms", "--raft-election-timeout", "300ms", "--raft-leader-lease-timeout", "150ms")
	agents := map[string]*proc{}
	for i := range 3 {
		name := fmt.Sprintf("agent-%d", i)
		agents[name] = startProc(t, dir, name, nil, agentBin,
			"--data-dir", filepath.Join(dir, name), "--join", strings.Join(mgrAddrs, ","), "--token", joinTokens(t, mgrAddrs[0]).GetWorker(),
			"--advertise-addr", freeAddr(t), "--gossip-addr", freeAddr(t), "--hostname", name,
			"--runtime", "fake", "--cpus", "2", "--memory", "2GiB", "--log-level", "debug")
	}
	c := control(t, mgrAddrs[1])
	hostOf := waitReady(t, c, agents)
	_, err := call(t, func(ctx context.Context) (*shoalpb.ServiceWriteResponse, error) {
		return c.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
			Name: "web", Image: "busybox", Mode: "replicated", Replicas: 6,
			StopGracePeriod: durationpb.New(time.Second),
		}})
	})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	var victimID string
	for id, n := range waitReplicas(t, c, 6, "") {
		if n > 0 {
			victimID = id
		}
	}
	victim := agents[hostOf[victimID]]
	if victim == nil {
		t.Fatalf("replicas run on node %s, which is no agent of this test", victimID)
	}
	victim.kill9(t)
	waitReplicas(t, c, 6, victimID)
	resp, err := call(t, func(ctx context.Context) (*shoalpb.Node, error) {
		return c.GetNode(ctx, &shoalpb.GetNodeRequest{Node: victimID})
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != "down" {
		t.Errorf("killed node is %s (%s), want down", resp.GetStatus(), resp.GetStatusMessage())
	}
}
