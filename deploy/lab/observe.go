package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// What the lab reads to see a fault from outside: which manager leads (each
// manager's own view, through its socket), which manager each agent holds
// its session with (the agent's log), and the processes of the containers
// (each agent host's containerd).

// ManagerID is the Raft member id of a manager host: the node ID of the
// certificate in its data dir.
func (l *Lab) ManagerID(h *Host) (string, error) {
	id, err := manager.ReadID(filepath.Join(h.Dir(l), "data"))
	if err != nil {
		return "", fmt.Errorf("manager id of %s: %w", h.Name, err)
	}
	return id, nil
}

// Leader returns the manager host that leads now: one of the managers not
// named in skip says, from its own state, that it is the leader. (A cut
// leader still believes it leads for a moment: skip it.)
func (l *Lab) Leader(ctx context.Context, skip ...string) (*Host, error) {
	c, err := l.dialManagers(false, skip...)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var errs []error
	for i, ctl := range c.ctl {
		h := c.hosts[i]
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := ctl.ClusterStatus(cctx, &shoalpb.ClusterStatusRequest{Stale: true})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
			continue
		}
		if st.GetLeaderId() != "" && st.GetLeaderId() == st.GetAnsweredBy() {
			return h, nil
		}
		errs = append(errs, fmt.Errorf("%s does not lead (leader %q, term %d)", h.Name, st.GetLeaderId(), st.GetTerm()))
	}
	return nil, fmt.Errorf("no manager leads: %w", errors.Join(errs...))
}

// ManagerAddr is a manager host's gRPC address on the lab network, as agents
// dial it.
func (h *Host) ManagerAddr() string { return fmt.Sprintf("%s:%d", h.IP, ManagerPort) }

// Session is an agent's session with a manager, as its log tells it.
type Session struct {
	Manager string    // the manager's gRPC address
	At      time.Time // when the agent logged it established
	Ended   bool      // a later line says it ended
}

func (s Session) String() string {
	state := "open"
	if s.Ended {
		state = "ended"
	}
	return fmt.Sprintf("%s since %s (%s)", s.Manager, s.At.Format("15:04:05.000"), state)
}

// LogMark is the length of an agent host's agent log now: AgentSession reads
// only what is written after it.
func (l *Lab) LogMark(name string) (int64, error) {
	h, err := l.Host(name)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(filepath.Join(h.Dir(l), "agent.log"))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// AgentSession returns the last session the agent of host name established
// after mark; ok is false if it established none since.
func (l *Lab) AgentSession(name string, mark int64) (s Session, ok bool, err error) {
	h, err := l.Host(name)
	if err != nil {
		return s, false, err
	}
	f, err := os.Open(filepath.Join(h.Dir(l), "agent.log"))
	if err != nil {
		return s, false, err
	}
	defer f.Close()
	if _, err := f.Seek(mark, io.SeekStart); err != nil {
		return s, false, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch logField(line, "msg") {
		case "session established":
			at, _ := time.Parse(time.RFC3339Nano, logField(line, "time"))
			s, ok = Session{Manager: logField(line, "manager"), At: at}, true
		case "session ended":
			if ok && logField(line, "manager") == s.Manager {
				s.Ended = true
			}
		}
	}
	return s, ok, sc.Err()
}

// logField returns the value of key in a log/slog text line ("" if absent).
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	switch {
	case strings.HasPrefix(line, key+"="):
		i = 0
	case i >= 0:
		i++
	default:
		return ""
	}
	rest := line[i+len(key)+1:]
	if strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return ""
		}
		v, _ := strconv.Unquote(q)
		return v
	}
	if j := strings.IndexByte(rest, ' '); j >= 0 {
		return rest[:j]
	}
	return rest
}

// ContainerProc is the main process of a task's container.
type ContainerProc struct {
	PID    int
	Start  uint64 // start time in clock ticks since boot: with the PID, the process
	Status string // containerd's task status: RUNNING, STOPPED, ...
}

// ContainerProcs lists the container processes an agent host's containerd
// runs, by task ID (the container ID is the task ID).
func (l *Lab) ContainerProcs(name string) (map[string]ContainerProc, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("ctr", "--address", filepath.Join(h.Dir(l), "containerd", "containerd.sock"),
		"-n", l.ContainerdNamespace(h), "tasks", "ls").Output()
	if err != nil {
		return nil, fmt.Errorf("ctr tasks ls on %s: %w", name, err)
	}
	procs := map[string]ContainerProc{}
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue // the header, or the last empty line
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("ctr tasks ls on %s: line %q: %w", name, line, err)
		}
		start, _ := procStart(pid) // 0 once the process is gone
		procs[f[0]] = ContainerProc{PID: pid, Start: start, Status: f[2]}
	}
	return procs, nil
}
