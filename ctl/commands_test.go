package ctl

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestErrorMessages checks that each gRPC error the manager maps comes out
// as a readable sentence on stderr with exit status 1.
func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeControl)
		args  []string
		want  []string
	}{
		{"not found", nil, []string{"service", "inspect", "nope"}, []string{`Error: service "nope" not found`}},
		{"node not found", nil, []string{"node", "inspect", "nope"}, []string{`Error: node "nope" not found`}},
		{"already exists", nil, []string{"service", "create", "--name", "web", "busybox"}, []string{`service "web" already exists`}},
		{"precondition", nil, []string{"node", "rm", "worker-1"}, []string{`node "worker-1" is ready: drain it first, or use --force`}},
		{"unavailable", func(f *fakeControl) { f.unavailable = "no leader" }, []string{"node", "ls"},
			[]string{"no manager could answer", ": no leader", "check that a manager is running", "shoalctl cluster status --stale"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeControl()
			if tt.setup != nil {
				tt.setup(f)
			}
			mustFail(t, serveTCP(t, f), tt.args, tt.want...)
		})
	}
}

// TestPartialFailure checks that commands over several names do what they
// can and report the rest.
func TestPartialFailure(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	r := mustFail(t, host, []string{"service", "rm", "nope", "web"}, `service "nope" not found`)
	if r.stdout != "web\n" {
		t.Errorf("stdout = %q, want web removed", r.stdout)
	}
	r = mustFail(t, host, []string{"service", "inspect", "--pretty", "agent", "web"}, `service "web" not found`)
	if !strings.Contains(r.stdout, "Name:         agent") {
		t.Errorf("stdout %q does not show agent", r.stdout)
	}
}

func TestStaleReads(t *testing.T) {
	tests := []struct {
		args  []string
		stale func(f *fakeControl) []bool
	}{
		{[]string{"service", "ls"}, func(f *fakeControl) []bool { return staleOf(sent[*shoalpb.ListServicesRequest](f)) }},
		{[]string{"service", "inspect", "web"}, func(f *fakeControl) []bool { return staleOf(sent[*shoalpb.GetServiceRequest](f)) }},
		{[]string{"service", "ps", "web"}, func(f *fakeControl) []bool {
			return append(staleOf(sent[*shoalpb.ListTasksRequest](f)), staleOf(sent[*shoalpb.ListNodesRequest](f))...)
		}},
		{[]string{"node", "ls"}, func(f *fakeControl) []bool { return staleOf(sent[*shoalpb.ListNodesRequest](f)) }},
		{[]string{"node", "inspect", "worker-1"}, func(f *fakeControl) []bool { return staleOf(sent[*shoalpb.GetNodeRequest](f)) }},
		{[]string{"cluster", "status"}, func(f *fakeControl) []bool { return staleOf(sent[*shoalpb.ClusterStatusRequest](f)) }},
	}
	for _, tt := range tests {
		for _, stale := range []bool{false, true} {
			args := tt.args
			if stale {
				args = append(args[:len(args):len(args)], "--stale")
			}
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				f := newFakeControl()
				mustRun(t, serveTCP(t, f), args...)
				got := tt.stale(f)
				if len(got) == 0 {
					t.Fatal("no read request was sent")
				}
				for _, s := range got {
					if s != stale {
						t.Errorf("request stale = %v, want %v", s, stale)
					}
				}
			})
		}
	}
}

type staler interface{ GetStale() bool }

func staleOf[T staler](reqs []T) []bool {
	var out []bool
	for _, r := range reqs {
		out = append(out, r.GetStale())
	}
	return out
}

func TestNodeUpdate(t *testing.T) {
	f := newFakeControl()
	host := serveTCP(t, f)
	mustRun(t, host, "node", "update", "--availability", "pause", "--label-add", "disk=ssd", "--label-rm", "zone", "worker-1")
	reqs := sent[*shoalpb.UpdateNodeRequest](f)
	if len(reqs) != 1 {
		t.Fatalf("fake got %d UpdateNode requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.GetAvailability() != "pause" || r.GetLabelAdd()["disk"] != "ssd" || len(r.GetLabelRm()) != 1 || r.GetLabelRm()[0] != "zone" {
		t.Errorf("request = %v", r)
	}
	mustFail(t, host, []string{"node", "update", "--availability", "off", "worker-1"}, `--availability "off": want active, pause or drain`)
	mustFail(t, host, []string{"node", "update", "worker-1"}, "nothing to update")
	mustFail(t, host, []string{"node", "update", "--label-add", "=v", "worker-1"}, `--label-add "=v": empty label key`)
	if n := len(sent[*shoalpb.UpdateNodeRequest](f)); n != 1 {
		t.Errorf("refused updates sent requests: %d in all, want 1", n)
	}
	mustRun(t, host, "node", "rm", "--force", "worker-1")
	if reqs := sent[*shoalpb.RemoveNodeRequest](f); len(reqs) != 1 || !reqs[0].GetForce() {
		t.Errorf("node rm --force sent %v", reqs)
	}
}

// TestEveryCommandHasExample walks the command tree: each command has an
// Example for --help.
func TestEveryCommandHasExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" && c.Name() != "help" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand(&App{Getenv: func(string) string { return "" }}))
	out := mustRun(t, "unix:///unused.sock", "service", "create", "--help")
	if !strings.Contains(out, "Examples:") {
		t.Errorf("create --help has no Examples:\n%s", out)
	}
}

func TestHumanDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "Less than a second"},
		{500 * time.Millisecond, "Less than a second"},
		{time.Second, "1 second"},
		{45 * time.Second, "45 seconds"},
		{90 * time.Second, "About a minute"},
		{2 * time.Minute, "2 minutes"},
		{59 * time.Minute, "59 minutes"},
		{time.Hour, "About an hour"},
		{2 * time.Hour, "2 hours"},
		{47 * time.Hour, "47 hours"},
		{3 * 24 * time.Hour, "3 days"},
		{15 * 24 * time.Hour, "2 weeks"},
		{90 * 24 * time.Hour, "3 months"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	}
	for _, tt := range tests {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	host := serveTCP(t, newFakeControl())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"service", "bogus"}, `unknown command "bogus" for "shoalctl service"`},
		{[]string{"bogus"}, `unknown command "bogus" for "shoalctl"`},
		{[]string{"service", "ps"}, "shoalctl service ps needs at least one SERVICE"},
		{[]string{"service", "scale"}, "needs at least one SERVICE=REPLICAS"},
		{[]string{"service", "update", "--replicas", "2"}, "shoalctl service update needs exactly one SERVICE, got 0 arguments"},
		{[]string{"node", "update", "--availability", "drain", "a", "b"}, "needs exactly one NODE, got 2"},
		{[]string{"cluster", "status", "extra"}, `unknown command "extra" for "shoalctl cluster status"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			mustFail(t, host, tt.args, tt.want)
		})
	}
	if out := mustRun(t, host, "node"); !strings.Contains(out, "Available Commands:") {
		t.Errorf("shoalctl node printed %q, want its help", out)
	}
}

// TestNodeLsPages: node ls follows the manager's pages, so a list larger
// than one page comes out whole.
func TestNodeLsPages(t *testing.T) {
	f := newFakeControl()
	for i := range 2*listPageSize + 17 {
		f.nodes = append(f.nodes, &shoalpb.NodeSummary{Node: &shoalpb.Node{Id: fmt.Sprintf("paged%019d", i),
			Hostname: fmt.Sprintf("paged-%05d", i), Status: "ready", Availability: "active"}})
	}
	host := serveTCP(t, f)
	out := mustRun(t, host, "node", "ls", "-q")
	if got, want := strings.Count(out, "\n"), len(f.nodes); got != want {
		t.Fatalf("node ls -q printed %d lines, want %d", got, want)
	}
	reqs := sent[*shoalpb.ListNodesRequest](f)
	if len(reqs) != 3 || reqs[0].GetPageSize() != listPageSize || reqs[2].GetPageToken() == "" {
		t.Fatalf("requests %v, want 3 pages of %d", reqs, listPageSize)
	}
}
