package containerd

import (
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// TestContainerOptions runs one container per option on a real containerd
// and reads the option back from inside the container (or from
// containerd): hostname, PID 1 the init, a read-only root, capabilities,
// a sysctl, ulimits, a tmpfs mount, extra groups, a terminal, labels.
func TestContainerOptions(t *testing.T) {
	e := newEnv(t)
	e.rt.opts.NodeHostname = "node-a"
	if _, err := os.Stat(DefaultInitPath); err != nil {
		t.Fatalf("--init needs %s: run 'make deps' (apt-get install tini): %v", DefaultInitPath, err)
	}
	cases := []struct {
		name string
		cmd  string
		opts api.ContainerOptions
		edit func(*api.ServiceSpec)
		want []string // lines of stdout, in order
	}{
		{name: "hostname template", cmd: "hostname",
			opts: api.ContainerOptions{Hostname: "{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}"},
			want: []string{"web-1.node-a"}},
		{name: "init is pid 1", cmd: "tr '\\0' ' ' < /proc/1/cmdline; echo",
			opts: api.ContainerOptions{Init: true},
			want: []string{"/sbin/docker-init -- sh -c tr '\\0' ' ' < /proc/1/cmdline; echo "}},
		{name: "read-only root", cmd: "touch /x 2>/dev/null; echo rc=$?; touch /scratch/x && echo tmpfs writable",
			opts: api.ContainerOptions{ReadOnly: true},
			edit: func(s *api.ServiceSpec) { s.Mounts = []api.Mount{{Type: api.MountTmpfs, Target: "/scratch"}} },
			want: []string{"rc=1", "tmpfs writable"}},
		{name: "sysctl", cmd: "cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max",
			opts: api.ContainerOptions{Sysctls: map[string]string{"kernel.shmmax": "65536", "fs.mqueue.msg_max": "20"}},
			want: []string{"65536", "20"}},
		{name: "ulimits", cmd: "ulimit -Sn; ulimit -Hn; ulimit -Sc",
			opts: api.ContainerOptions{Ulimits: []api.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: 0, Hard: 0}}},
			want: []string{"1024", "2048", "0"}},
		{name: "tmpfs mount", cmd: "grep ' /scratch ' /proc/mounts | cut -d' ' -f1,3,4",
			edit: func(s *api.ServiceSpec) {
				s.Mounts = []api.Mount{{Type: api.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20, TmpfsMode: 0o700}}
			},
			want: []string{"tmpfs tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=700"}},
		{name: "groups", cmd: "id -G",
			opts: api.ContainerOptions{Groups: []string{"1234", "5678"}},
			want: []string{"0 1234 5678"}},
		{name: "tty", cmd: "[ -t 1 ] && echo terminal",
			opts: api.ContainerOptions{TTY: true},
			want: []string{"terminal"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := e.task(t, "sh", "-c", tc.cmd)
			task.Spec.Container = &tc.opts
			if tc.edit != nil {
				tc.edit(task.Spec)
			}
			e.run(t, task)
			if st := e.wait(t, task.ID); st.Code != 0 {
				t.Fatalf("exit %+v, logs %q", st, e.logsOf(t, task.ID))
			}
			var got []string
			for _, l := range e.logsOf(t, task.ID) {
				got = append(got, strings.TrimSuffix(strings.TrimPrefix(l, "stdout: "), "\r"))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("output %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCapabilities: cap_add and cap_drop change PID 1's effective set as
// /proc/1/status shows it.
func TestCapabilities(t *testing.T) {
	e := newEnv(t)
	const chown, netAdmin, sysTime = 0, 12, 25
	cases := []struct {
		name      string
		opts      api.ContainerOptions
		have, not []int
	}{
		{"default", api.ContainerOptions{}, []int{chown}, []int{netAdmin, sysTime}},
		{"add and drop", api.ContainerOptions{CapAdd: []string{"net_admin", "CAP_SYS_TIME"}, CapDrop: []string{"CHOWN"}},
			[]int{netAdmin, sysTime}, []int{chown}},
		{"drop all, add one", api.ContainerOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_ADMIN"}},
			[]int{netAdmin}, []int{chown, sysTime}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := e.task(t, "sh", "-c", "grep CapEff /proc/1/status")
			task.Spec.Container = &tc.opts
			e.run(t, task)
			e.wait(t, task.ID)
			logs := e.logsOf(t, task.ID)
			if len(logs) != 1 {
				t.Fatalf("logs %q", logs)
			}
			hex := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(logs[0], "stdout: "), "CapEff:"))
			set, ok := new(big.Int).SetString(hex, 16)
			if !ok {
				t.Fatalf("CapEff %q", hex)
			}
			for _, c := range tc.have {
				if set.Bit(c) != 1 {
					t.Errorf("capability %d missing from CapEff %s", c, hex)
				}
			}
			for _, c := range tc.not {
				if set.Bit(c) != 0 {
					t.Errorf("capability %d in CapEff %s", c, hex)
				}
			}
		})
	}
}

// TestStopSignalAndLabels: Stop sends the spec's stop signal (the command
// traps SIGINT and says so; SIGTERM would not be trapped), and containerd
// keeps the container labels beside shoal's own.
func TestStopSignalAndLabels(t *testing.T) {
	e := newEnv(t)
	task := e.task(t, "sh", "-c", "trap 'echo got INT; exit 0' INT; echo ready; while true; do sleep 0.1; done")
	task.Spec.Container = &api.ContainerOptions{StopSignal: "SIGINT", Labels: map[string]string{"team": "db", "tier": "back"}}
	e.run(t, task)
	eventually(t, 30*time.Second, "the container says ready", func() bool {
		return slices.Contains(e.logsOf(t, task.ID), "stdout: ready")
	})
	ctr, err := e.rt.client.LoadContainer(e.rt.nsCtx(t.Context()), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	labels, err := ctr.Labels(e.rt.nsCtx(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"team": "db", "tier": "back", api.LabelTask: task.ID} {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, labels[k], v, labels)
		}
	}
	if err := e.rt.Stop(t.Context(), task.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := e.wait(t, task.ID)
	if got := e.logsOf(t, task.ID); st.Code != 0 || !slices.Contains(got, "stdout: got INT") {
		t.Fatalf("after stop: exit %+v, logs %q; want the INT trap's line and exit 0", st, got)
	}
}

// TestHostnameTemplateFailsOnTheAgent: a template that renders an invalid
// hostname for this task (the server checks a sample) fails Create with
// the field named.
func TestHostnameTemplateFailsOnTheAgent(t *testing.T) {
	e := newEnv(t)
	e.rt.opts.NodeHostname = "bad host"
	task := e.task(t, "true")
	task.Spec.Container = &api.ContainerOptions{Hostname: "{{.Node.Hostname}}"}
	err := e.rt.Create(t.Context(), task)
	if err == nil || !strings.Contains(err.Error(), `spec.container.hostname "{{.Node.Hostname}}"`) {
		t.Fatalf("create = %v, want the hostname field named", err)
	}
}
