package ctl

import (
	"strings"
	"testing"
)

// TestFilters checks docker's filter semantics on every list: a key given
// twice is either value, different keys must all match.
func TestFilters(t *testing.T) {
	host := serveTCP(t, newFakeControl())
	tests := []struct {
		args []string
		want string // the IDs printed with -q, space-separated
	}{
		{[]string{"service", "ls", "-f", "name=we"}, "svcweb012345"},
		{[]string{"service", "ls", "-f", "name=web", "-f", "name=agent"}, "svcagent0123 svcweb012345"},
		{[]string{"service", "ls", "-f", "mode=global"}, "svcagent0123"},
		{[]string{"service", "ls", "-f", "label=tier"}, "svcagent0123 svcweb012345"},
		{[]string{"service", "ls", "-f", "label=tier=back"}, ""},
		{[]string{"service", "ls", "-f", "id=svcweb", "-f", "mode=global"}, ""},
		{[]string{"service", "ls", "--no-trunc", "-f", "id=svcweb"}, "svcweb0123456789abcdef"},
		{[]string{"service", "ps", "-f", "desired-state=running", "web"}, "taskweb1new0 taskweb20000 taskweb30000"},
		{[]string{"service", "ps", "-f", "desired-state=shutdown", "web"}, "taskweb1old0"},
		{[]string{"service", "ps", "-f", "node=worker-1", "web", "agent"}, "taskagentw10 taskweb1new0"},
		{[]string{"service", "ps", "-f", "node=nodemanager1", "web", "agent"}, "taskagentm10 taskweb20000"},
		{[]string{"service", "ps", "-f", "name=web.1", "web"}, "taskweb1new0 taskweb1old0"},
		{[]string{"service", "ps", "-f", "name=web.1", "-f", "desired-state=running", "web"}, "taskweb1new0"},
		{[]string{"node", "ls", "-f", "role=manager"}, "nodemanager1"},
		{[]string{"node", "ls", "-f", "label=zone=a"}, "nodemanager1 nodeworker1a"},
		{[]string{"node", "ls", "-f", "name=worker", "-f", "availability=active"}, "nodeworker1a"},
		{[]string{"node", "ls", "-f", "name=worker-2", "-f", "name=manager-1"}, "nodemanager1 nodeworker2b"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustRun(t, host, append(tt.args, "-q")...)
			if got := strings.Join(strings.Fields(out), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "ls", "-f", "color=red"}, `--filter "color=red": unknown key "color"; want one of id, name, label, mode`},
		{[]string{"service", "ls", "-f", "name"}, `--filter "name": want KEY=VALUE`},
		{[]string{"service", "ps", "-f", "desired-state=sleeping", "web"}, `--filter "desired-state=sleeping": task state "sleeping"`},
		{[]string{"node", "ls", "-f", "mode=global"}, `unknown key "mode"`},
	} {
		mustFail(t, host, bad.args, bad.want)
	}
}
