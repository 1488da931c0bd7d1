package agent

import (
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func TestDecide(t *testing.T) {
	run, shut := api.TaskRunning, api.TaskShutdown
	exit := &ExitStatus{Code: 1}
	tests := []struct {
		name    string
		desired api.TaskState
		st      api.TaskState
		f       facts
		want    step
	}{
		{"assigned is accepted", run, api.TaskAssigned, facts{}, stepAccept},
		{"accepted prepares", run, api.TaskAccepted, facts{}, stepPrepare},
		{"preparing pulls", run, api.TaskPreparing, facts{}, stepPull},
		{"starting starts", run, api.TaskStarting, facts{}, stepStart},
		{"running is watched", run, api.TaskRunning, facts{exists: true, running: true}, stepWatch},
		{"watched running waits", run, api.TaskRunning, facts{exists: true, running: true, watching: true}, stepWait},
		{"exit is reported", run, api.TaskRunning, facts{exists: true, exited: exit, watching: true}, stepExited},
		{"complete waits", run, api.TaskComplete, facts{}, stepWait},
		{"failed waits", run, api.TaskFailed, facts{exited: exit}, stepWait},
		{"rejected waits", run, api.TaskRejected, facts{}, stepWait},
		{"shutdown of running", shut, api.TaskRunning, facts{exists: true, running: true}, stepShutdown},
		{"shutdown before start", shut, api.TaskAssigned, facts{}, stepShutdown},
		{"remove of running", api.TaskRemove, api.TaskRunning, facts{exists: true}, stepShutdown},
		{"stopped and unwanted is cleaned", shut, api.TaskFailed, facts{exists: true}, stepCleanup},
		{"cleaned waits", shut, api.TaskShutdown, facts{cleaned: true}, stepWait},
		{"removed tears down", run, api.TaskRunning, facts{removed: true}, stepTeardown},
		{"removed held tears down", run, api.TaskRunning, facts{removed: true, held: true}, stepTeardown},
		{"held is not started", run, api.TaskStarting, facts{held: true}, stepWait},
		{"held is not accepted", run, api.TaskAssigned, facts{held: true}, stepWait},
		{"held running is watched", run, api.TaskRunning, facts{held: true, exists: true, running: true}, stepWatch},
		{"held exit is reported", run, api.TaskRunning, facts{held: true, exited: exit, watching: true}, stepExited},
		{"held is not shut down", shut, api.TaskRunning, facts{held: true, exists: true}, stepWait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.desired, tc.st, tc.f); got != tc.want {
				t.Errorf("decide(%s, %s, %+v) = %d, want %d", tc.desired, tc.st, tc.f, got, tc.want)
			}
		})
	}
}

func TestParseMemTotal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"ok", "MemFree: 1 kB\nMemTotal:       16314856 kB\n", 16314856 * 1024, false},
		{"missing", "MemFree: 1 kB\n", 0, true},
		{"garbage", "MemTotal: lots kB\n", 0, true},
		{"unit", "MemTotal: 12 MB\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemTotal([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseMemTotal = %d, %v; want %d, err %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestNodeIDKept(t *testing.T) {
	dir := t.TempDir()
	id1, err := NodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := NodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 || !validNodeID(id1) {
		t.Fatalf("node ids %q then %q; want one valid id kept", id1, id2)
	}
	if other, _ := NodeID(t.TempDir()); other == id1 {
		t.Fatalf("two data dirs got the same node id %q", id1)
	}
}
