package shoalpb

import "github.com/shoal-sched/shoal/api"

// FromContainerOptions converts container options to the message (nil
// when none is set).
func FromContainerOptions(o *api.ContainerOptions) *ContainerOptions {
	if o.IsZero() {
		return nil
	}
	out := &ContainerOptions{
		Hostname: o.Hostname, StopSignal: o.StopSignal, Init: o.Init, ReadOnly: o.ReadOnly,
		CapAdd: o.CapAdd, CapDrop: o.CapDrop, Sysctls: o.Sysctls, Groups: o.Groups, Tty: o.TTY,
		Labels: o.Labels, LogMaxSize: o.LogMaxSize, LogMaxFiles: o.LogMaxFiles,
	}
	for _, u := range o.Ulimits {
		out.Ulimits = append(out.Ulimits, &Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	return out
}

// ToContainerOptions converts the message to container options (nil when
// none is set).
func ToContainerOptions(o *ContainerOptions) *api.ContainerOptions {
	if o == nil {
		return nil
	}
	out := &api.ContainerOptions{
		Hostname: o.GetHostname(), StopSignal: o.GetStopSignal(), Init: o.GetInit(), ReadOnly: o.GetReadOnly(),
		CapAdd: o.GetCapAdd(), CapDrop: o.GetCapDrop(), Sysctls: o.GetSysctls(), Groups: o.GetGroups(), TTY: o.GetTty(),
		Labels: o.GetLabels(), LogMaxSize: o.GetLogMaxSize(), LogMaxFiles: o.GetLogMaxFiles(),
	}
	for _, u := range o.GetUlimits() {
		out.Ulimits = append(out.Ulimits, api.Ulimit{Name: u.GetName(), Soft: u.GetSoft(), Hard: u.GetHard()})
	}
	if out.IsZero() {
		return nil
	}
	return out
}
