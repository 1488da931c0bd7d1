package api

import (
	"strings"
	"syscall"
	"testing"
)

func TestValidateContainerOptions(t *testing.T) {
	tests := []struct {
		name string
		o    ContainerOptions
		want string // "" for valid
	}{
		{"all valid", ContainerOptions{
			Hostname: "{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}", StopSignal: "SIGINT", Init: true, ReadOnly: true,
			CapAdd: []string{"net_admin", "CAP_SYS_TIME"}, CapDrop: []string{"ALL"},
			Sysctls: map[string]string{"kernel.shmmax": "65536", "fs.mqueue.msg_max": "20", "kernel.sem": "250 32000 32 128"},
			Ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: -1, Hard: -1}},
			Groups:  []string{"audio", "1000"}, TTY: true, Labels: map[string]string{"team": "a"},
			LogMaxSize: 1 << 20, LogMaxFiles: 2,
		}, ""},
		{"plain hostname", ContainerOptions{Hostname: "web-1"}, ""},
		{"hostname does not parse", ContainerOptions{Hostname: "{{.Service.Name"}, `spec.container.hostname "{{.Service.Name": not a valid template`},
		{"hostname unknown field", ContainerOptions{Hostname: "{{.Service.Labels}}"}, `spec.container.hostname "{{.Service.Labels}}": template does not render`},
		{"hostname renders badly", ContainerOptions{Hostname: "a b"}, `character ' ' at 1 not allowed in a hostname`},
		{"hostname too long", ContainerOptions{Hostname: strings.Repeat("h", 64)}, "64 characters, at most 63"},
		{"unknown signal", ContainerOptions{StopSignal: "SIGFOO"}, `spec.container.stop_signal "SIGFOO": unknown signal`},
		{"signal number", ContainerOptions{StopSignal: "99"}, `signal number 99`},
		{"unknown capability", ContainerOptions{CapAdd: []string{"CAP_FLY"}}, `spec.container.cap_add[0] "CAP_FLY": unknown capability`},
		{"host sysctl", ContainerOptions{Sysctls: map[string]string{"kernel.panic": "1"}}, `spec.container.sysctls "kernel.panic": not a namespaced sysctl`},
		{"net sysctl on the host network", ContainerOptions{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, `spec.container.sysctls "net.ipv4.ip_forward": net.* sysctls are per network namespace`},
		{"unknown ulimit", ContainerOptions{Ulimits: []Ulimit{{Name: "files", Soft: 1, Hard: 1}}}, `spec.container.ulimits[0] "files=1:1": unknown ulimit "files"`},
		{"soft above hard", ContainerOptions{Ulimits: []Ulimit{{Name: "nofile", Soft: 10, Hard: 5}}}, `soft limit 10 is above the hard limit 5`},
		{"ulimit twice", ContainerOptions{Ulimits: []Ulimit{{Name: "nproc", Soft: 1, Hard: 1}, {Name: "nproc", Soft: 2, Hard: 2}}}, `nproc is set twice`},
		{"reserved label", ContainerOptions{Labels: map[string]string{"shoal.task": "x"}}, `keys starting with "shoal." are shoal's own`},
		{"log files", ContainerOptions{LogMaxFiles: 5}, `spec.container.log_max_files "5": at most 2`},
		{"log size", ContainerOptions{LogMaxSize: 10}, `spec.container.log_max_size "10"`},
		{"bad group", ContainerOptions{Groups: []string{"a:b"}}, `spec.container.groups[0] "a:b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &ServiceSpec{Name: "web", Image: "busybox", Container: &tt.o}
			ApplyDefaults(s)
			checkErr(t, ValidateServiceSpec(s), tt.want)
		})
	}
}

func TestRenderHostname(t *testing.T) {
	task := &Task{ID: "t1", ServiceID: "s1", Slot: 3}
	c := NewHostnameContext(task, "demo_web", "n1", "host-a")
	got, err := RenderHostname("{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}", c)
	if err != nil || got != "demo_web-3.host-a" {
		t.Fatalf("RenderHostname = %q, %v", got, err)
	}
}

func TestParseUlimitAndSignal(t *testing.T) {
	u, err := ParseUlimit("nofile=1024:2048")
	if err != nil || u != (Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}) {
		t.Fatalf("ParseUlimit = %+v, %v", u, err)
	}
	if u, err := ParseUlimit("nproc=64"); err != nil || u.Hard != 64 {
		t.Fatalf("ParseUlimit(nproc=64) = %+v, %v", u, err)
	}
	for _, bad := range []string{"nofile", "nofile=x", "nofile=1:y", "nofile=5:1", "bogus=1"} {
		if _, err := ParseUlimit(bad); err == nil {
			t.Errorf("ParseUlimit(%q) accepted", bad)
		}
	}
	for in, want := range map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "quit": syscall.SIGQUIT, "10": syscall.SIGUSR1} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
}
