package ctl

import (
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// logsControl is the fakeControl that also serves ServiceLogs: it sends
// its lines (the last tail of each task's), then with follow and hold
// keeps the stream open until the client leaves.
type logsControl struct {
	*fakeControl
	lines []*shoalpb.LogLine
	hold  bool

	mu   sync.Mutex
	reqs []*shoalpb.ServiceLogsRequest
}

func (l *logsControl) ServiceLogs(req *shoalpb.ServiceLogsRequest, stream grpc.ServerStreamingServer[shoalpb.LogLine]) error {
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	l.mu.Unlock()
	l.fakeControl.mu.Lock()
	svc, err := l.findService(req.GetService())
	l.fakeControl.mu.Unlock()
	if err != nil {
		return err
	}
	for _, line := range l.tail(svc.GetId(), req.GetTail()) {
		if err := stream.Send(line); err != nil {
			return err
		}
	}
	if req.GetFollow() && l.hold {
		<-stream.Context().Done()
	}
	return nil
}

// tail returns the lines of the service's tasks, the last n of each task
// (all if n is -1); error lines always.
func (l *logsControl) tail(serviceID string, n int64) []*shoalpb.LogLine {
	svcOf := map[string]string{}
	l.fakeControl.mu.Lock()
	for _, t := range l.fakeControl.tasks {
		svcOf[t.GetId()] = t.GetServiceId()
	}
	l.fakeControl.mu.Unlock()
	left := map[string]int64{}
	var out []*shoalpb.LogLine
	for i := len(l.lines) - 1; i >= 0; i-- {
		line := l.lines[i]
		if line.GetStream() != shoalpb.LogStreamError {
			if svcOf[line.GetTaskId()] != serviceID || (n >= 0 && left[line.GetTaskId()] >= n) {
				continue
			}
			left[line.GetTaskId()]++
		}
		out = append([]*shoalpb.LogLine{line}, out...)
	}
	return out
}

func (l *logsControl) requests() []*shoalpb.ServiceLogsRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*shoalpb.ServiceLogsRequest(nil), l.reqs...)
}

func logLine(task *shoalpb.Task, stream, text string, ago time.Duration) *shoalpb.LogLine {
	return &shoalpb.LogLine{
		TaskId: task.GetId(), NodeId: task.GetNodeId(), Slot: task.GetSlot(),
		Stream: stream, Line: []byte(text), Time: at(ago),
	}
}

// newLogsControl serves the fake cluster with lines of web's tasks (slot
// 1 now and before, slot 2) and of the global service agent.
func newLogsControl() *logsControl {
	f := newFakeControl()
	byID := map[string]*shoalpb.Task{}
	for _, t := range f.tasks {
		byID[t.GetId()] = t
	}
	web1, web1old, web2 := byID["taskweb1new00000000000"], byID["taskweb1old00000000000"], byID["taskweb2000000000000000"]
	agent := byID["taskagentw1000000000000"]
	return &logsControl{fakeControl: f, lines: []*shoalpb.LogLine{
		logLine(web1old, "stdout", "listening on :8080", 11*time.Minute),
		logLine(web1old, "stderr", "panic: out of cheese", 10*time.Minute),
		logLine(web2, "stdout", "listening on :8080", 2*time.Hour),
		logLine(web1, "stdout", "listening on :8080", 2*time.Minute),
		logLine(web2, "stdout", "GET / 200", 90*time.Second),
		logLine(web1, "stdout", "GET /health 200", 30*time.Second),
		logLine(web1, "stderr", "slow request: 2.1s", 20*time.Second),
		logLine(agent, "stdout", "agent up", time.Hour),
	}}
}

// TestServiceLogsGolden prints the fake's lines in each format; stderr
// lines go to stderr.
func TestServiceLogsGolden(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr string
		wantTail   int64
	}{
		{"service_logs", []string{"service", "logs", "web"},
			"web.1.taskweb1old0@worker-2  | panic: out of cheese\nweb.1.taskweb1new0@worker-1  | slow request: 2.1s\n", -1},
		{"service_logs_tail_timestamps", []string{"service", "logs", "--tail", "1", "-t", "web"},
			"web.1.taskweb1old0@worker-2  | 2025-06-01T11:50:00.000000000Z panic: out of cheese\n" +
				"web.1.taskweb1new0@worker-1  | 2025-06-01T11:59:40.000000000Z slow request: 2.1s\n", 1},
		{"service_logs_no_task_ids", []string{"service", "logs", "--no-task-ids", "-n", "all", "web"},
			"web.1@worker-2  | panic: out of cheese\nweb.1@worker-1  | slow request: 2.1s\n", -1},
		{"service_logs_raw", []string{"service", "logs", "--raw", "web"},
			"panic: out of cheese\nslow request: 2.1s\n", -1},
		{"service_logs_global", []string{"service", "logs", "agent"}, "", -1},
		{"service_logs_global_no_trunc", []string{"service", "logs", "--no-trunc", "agent"}, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLogsControl()
			r := runCLI(t, serveTCP(t, l), tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			checkGolden(t, tt.name, r.stdout)
			if r.stderr != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.wantStderr)
			}
			reqs := l.requests()
			if len(reqs) != 1 || reqs[0].GetTail() != tt.wantTail || reqs[0].GetFollow() || !strings.HasPrefix(reqs[0].GetService(), "svc") {
				t.Errorf("requests %v; want one by service id with tail %d, no follow", reqs, tt.wantTail)
			}
		})
	}
}

// TestServiceLogsErrors: bad flags are refused before any request, and a
// node whose logs are missing is reported while the rest is printed.
func TestServiceLogsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad tail", []string{"service", "logs", "--tail", "ten", "web"}, []string{`--tail "ten"`, "a number of lines or all"}},
		{"negative tail", []string{"service", "logs", "--tail", "-2", "web"}, []string{`--tail "-2"`}},
		{"json", []string{"service", "logs", "-o", "json", "web"}, []string{`--output "json"`, "--raw"}},
		{"no service", []string{"service", "logs"}, []string{"exactly one SERVICE"}},
		{"unknown service", []string{"service", "logs", "nope"}, []string{`service "nope"`, "not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLogsControl()
			mustFail(t, serveTCP(t, l), tt.args, tt.want...)
			if reqs := l.requests(); len(reqs) != 0 {
				t.Errorf("a refused command sent %v", reqs)
			}
		})
	}

	t.Run("node unreachable", func(t *testing.T) {
		l := newLogsControl()
		l.lines = append(l.lines, &shoalpb.LogLine{
			NodeId: "nodeworker2bbbbbbbbbbbb2", Stream: shoalpb.LogStreamError, Time: at(0),
			Line: []byte("node nodeworker2bbbbbbbbbbbb2 (worker-2): cannot reach its agent at 10.0.0.2:4300: connection refused; the logs of its tasks are missing"),
		})
		r := mustFail(t, serveTCP(t, l), []string{"service", "logs", "--tail", "1", "web"},
			"logs missing: node nodeworker2bbbbbbbbbbbb2 (worker-2): cannot reach", `the logs of service "web" are incomplete`)
		if want := "web.2.taskweb20000@manager-1 | GET / 200\n"; r.stdout != want {
			t.Errorf("stdout %q; want the lines that came, %q", r.stdout, want)
		}
	})
}

// TestServiceLogsFollow: with --follow and no --timeout the command runs
// until interrupted; with --timeout it ends there, without error.
func TestServiceLogsFollow(t *testing.T) {
	l := newLogsControl()
	l.hold = true
	r := runCLI(t, serveTCP(t, l), "service", "logs", "-f", "--tail", "0", "--timeout", "300ms", "web")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q; want 0 when --timeout ends a followed stream", r.code, r.stderr)
	}
	reqs := l.requests()
	if len(reqs) != 1 || !reqs[0].GetFollow() || reqs[0].GetTail() != 0 {
		t.Fatalf("requests %v; want one with follow and tail 0", reqs)
	}
}
