package controlapi_test

import "github.com/shoal-sched/shoal/proto/shoalpb"

// containerFields are the bad container options: each refused naming the
// field, the value and the rule.
func containerFields() []specField {
	set := func(edit func(*shoalpb.ContainerOptions)) func(*shoalpb.ServiceSpec) {
		return func(s *shoalpb.ServiceSpec) {
			s.Container = &shoalpb.ContainerOptions{}
			edit(s.Container)
		}
	}
	return []specField{
		{"hostname template does not parse", set(func(o *shoalpb.ContainerOptions) { o.Hostname = "{{.Service.Name" }),
			[]string{"spec.container.hostname", `"{{.Service.Name"`, "not a valid template"}},
		{"hostname template unknown field", set(func(o *shoalpb.ContainerOptions) { o.Hostname = "{{.Task.Secret}}" }),
			[]string{"spec.container.hostname", "template does not render"}},
		{"hostname oversize", set(func(o *shoalpb.ContainerOptions) { o.Hostname = big(1 << 20) }),
			[]string{"spec.container.hostname", "at most 256"}},
		{"sysctl not namespaced", set(func(o *shoalpb.ContainerOptions) { o.Sysctls = map[string]string{"vm.swappiness": "1"} }),
			[]string{"spec.container.sysctls", `"vm.swappiness"`, "not a namespaced sysctl"}},
		{"net sysctl on the host network", set(func(o *shoalpb.ContainerOptions) { o.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"} }),
			[]string{"spec.container.sysctls", `"net.ipv4.ip_forward"`, "node's network"}},
		{"ulimit unknown", set(func(o *shoalpb.ContainerOptions) { o.Ulimits = []*shoalpb.Ulimit{{Name: "files", Soft: 1, Hard: 1}} }),
			[]string{"spec.container.ulimits[0]", `"files=1:1"`, "unknown ulimit"}},
		{"ulimit soft above hard", set(func(o *shoalpb.ContainerOptions) { o.Ulimits = []*shoalpb.Ulimit{{Name: "nofile", Soft: 9, Hard: 1}} }),
			[]string{"spec.container.ulimits[0]", "above the hard limit"}},
		{"capability unknown", set(func(o *shoalpb.ContainerOptions) { o.CapAdd = []string{"CAP_FLY"} }),
			[]string{"spec.container.cap_add[0]", `"CAP_FLY"`, "unknown capability"}},
		{"capabilities oversize", set(func(o *shoalpb.ContainerOptions) { o.CapDrop = list(65, "CHOWN") }),
			[]string{"spec.container.cap_drop", "65 entries", "at most 64"}},
		{"stop signal unknown", set(func(o *shoalpb.ContainerOptions) { o.StopSignal = "SIGBOGUS" }),
			[]string{"spec.container.stop_signal", `"SIGBOGUS"`, "unknown signal"}},
		{"container label reserved", set(func(o *shoalpb.ContainerOptions) { o.Labels = map[string]string{"shoal.task": "x"} }),
			[]string{"spec.container.labels", `"shoal.task"`, "shoal's own"}},
		{"log files", set(func(o *shoalpb.ContainerOptions) { o.LogMaxFiles = 9 }),
			[]string{"spec.container.log_max_files", `"9"`, "at most 2"}},
		{"tmpfs with a source", func(s *shoalpb.ServiceSpec) {
			s.Mounts = []*shoalpb.Mount{{Type: "tmpfs", Source: "/etc", Target: "/t"}}
		}, []string{"spec.mounts[0].source", `"/etc"`, "no source"}},
	}
}
