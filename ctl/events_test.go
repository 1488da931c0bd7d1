package ctl

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func fixtureEvents() []*shoalpb.Event {
	return []*shoalpb.Event{
		{Time: at(3 * time.Second), Type: "service", Action: "create", Id: "svcweb0123456789abcdef", Name: "web",
			Attributes: map[string]string{"image": "busybox:1.36", "replicas": "3", "index": "41"}},
		{Time: at(2 * time.Second), Type: "task", Action: "state", Id: "taskweb1new00000000000", Name: "web.1",
			Attributes: map[string]string{"service": "web", "node": "nodeworker1aaaaaaaaaaaa1", "state": "running", "desired_state": "running"}},
		{Time: at(time.Second), Type: "node", Action: "update", Id: "nodeworker2bbbbbbbbbbbb2", Name: "worker-2",
			Attributes: map[string]string{"status": "down", "availability": "drain"}},
	}
}

func TestEvents(t *testing.T) {
	f := newFakeControl()
	f.events = fixtureEvents()
	f.holdEvents = true
	host := serveTCP(t, f)
	// With --timeout the stream ends quietly when time is up.
	out := mustRun(t, host, "events", "--timeout", "300ms")
	checkGolden(t, "events", out)

	out = mustRun(t, host, "events", "--timeout", "300ms", "--filter", "type=task", "--filter", "type=node", "-o", "json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("JSON lines:\n%s\nwant the task and the node event", out)
	}
	for _, l := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev["type"] == "service" {
			t.Errorf("line %q: %v", l, err)
		}
	}
	reqs := sent[*shoalpb.EventsRequest](f)
	if got := reqs[len(reqs)-1].GetFilters(); len(got) != 0 {
		t.Errorf("a key given twice was sent to the manager: %v", got)
	}
	mustRun(t, host, "events", "--timeout", "300ms", "--filter", "service=web")
	reqs = sent[*shoalpb.EventsRequest](f)
	if got := reqs[len(reqs)-1].GetFilters(); len(got) != 1 || got[0] != "service=web" {
		t.Errorf("filters sent %v, want service=web", got)
	}

	// A stream the manager ends is an error: events runs until stopped.
	f.holdEvents = false
	r := mustFail(t, host, []string{"events"}, "the manager ended the event stream")
	if strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("stdout %q, want the 3 events before the end", r.stdout)
	}
	mustFail(t, host, []string{"events", "--filter", "type=volume"}, `--filter "type=volume": want type=service, type=task, type=node or type=network`)
	mustFail(t, host, []string{"events", "--filter", "since=1h"}, `unknown key "since"`)
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out := mustRun(t, "unix:///unused.sock", "completion", shell)
		if !strings.Contains(out, "shoalctl") || len(out) < 500 {
			t.Errorf("%s completion looks empty:\n%.200s", shell, out)
		}
	}
	mustFail(t, "unix:///unused.sock", []string{"completion", "tcsh"}, `SHELL "tcsh": want bash, zsh, fish or powershell`)

	// Names are completed from the manager.
	f := newFakeControl()
	host := serveTCP(t, f)
	mustRun(t, host, "service", "create", "-d", "--name", "st_x", "--label", "shoal.stack=st", "busybox")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"__complete", "service", "ps", "w"}, "web\n:4\n"},
		{[]string{"__complete", "service", "rm", ""}, "web\nagent\nst_x\n:4\n"},
		{[]string{"__complete", "node", "update", "--availability", "drain", "worker"}, "worker-1\nworker-2\n:4\n"},
		{[]string{"__complete", "stack", "ps", ""}, "st\n:4\n"},
	}
	for _, tt := range tests {
		out := mustRun(t, host, tt.args...)
		if got := out[:strings.LastIndex(out, ":4\n")+3]; got != tt.want {
			t.Errorf("%v: %q, want %q", tt.args, got, tt.want)
		}
	}
	// No manager: no names, and no error for the shell.
	out := mustRun(t, "unix:///nonexistent/control.sock", "__complete", "service", "ps", "")
	if !strings.HasPrefix(out, ":4\n") {
		t.Errorf("completion without a manager printed %q", out)
	}
}
