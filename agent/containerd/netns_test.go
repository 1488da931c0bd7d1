package containerd

import (
	"os/exec"
	"slices"
	"testing"

	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
)

// TestHostNetworkIsTheDaemonsNamespace runs containerd in a fresh network
// namespace, as on a lab host: a container on the "host" network then sees
// that namespace (only a loopback interface), not the
// machine's.
func TestHostNetworkIsTheDaemonsNamespace(t *testing.T) {
	name := "shoal-t-" + randomID(t)[:8]
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	d := containerdtest.StartDaemon(t, containerdtest.InNetNS("/run/netns/"+name))
	reg := containerdtest.StartRegistry(t)
	e := &env{daemon: d, registry: reg, opts: Options{
		Address:            d.Address,
		Namespace:          "netns",
		StateDir:           t.TempDir(),
		InsecureRegistries: []string{reg.Host},
		Logger:             testLogger(t),
	}}
	e.rt = e.newRuntime(t)
	// The image is fetched by this process, which is still in the
	// machine's namespace and so reaches the loopback registry.
	if err := e.rt.Pull(t.Context(), reg.Image); err != nil {
		t.Fatal(err)
	}
	task := e.task(t, "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
	e.run(t, task)
	if st := e.wait(t, task.ID); st.Code != 0 {
		t.Fatalf("exit %+v", st)
	}
	if got := e.logsOf(t, task.ID); !slices.Equal(got, []string{"stdout: lo"}) {
		t.Fatalf("interfaces = %q, want only lo", got)
	}
}
