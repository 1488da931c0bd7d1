package ctl

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// errNoWatch: the manager has no Watch call (an older version); the
// caller polls instead.
var errNoWatch = errors.New("the manager does not serve Watch")

// mirror is a local copy of the objects a watch passes, kept up to date
// by its messages.
type mirror struct {
	services map[string]*shoalpb.Service
	tasks    map[string]*shoalpb.Task
	nodes    map[string]*shoalpb.Node
	// specs: the task specs the current stream has sent (the watch asks
	// for each once), which fill in the tasks that come without theirs.
	specs map[taskSpecKey]*shoalpb.ServiceSpec
	index uint64 // the watch has brought the copy to this index
	// minIndex: a manager answers the watch only once it has applied
	// this index (the write waited for) and index.
	minIndex uint64
	ready    bool // the first snapshot (or resumed backlog) is in
	// snapshotting: a snapshot is arriving, and replaces what was held.
	snapshotting bool
}

// taskSpecKey names the spec of a service's tasks of one version.
type taskSpecKey struct {
	service string
	version uint64
}

func newMirror() *mirror {
	return &mirror{services: map[string]*shoalpb.Service{}, tasks: map[string]*shoalpb.Task{}, nodes: map[string]*shoalpb.Node{},
		specs: map[taskSpecKey]*shoalpb.ServiceSpec{}}
}

// newStream forgets the specs sent: a new stream sends them again.
func (m *mirror) newStream() { clear(m.specs) }

// apply takes in one message.
func (m *mirror) apply(msg *shoalpb.WatchMessage) {
	if msg.GetSnapshot() && !m.snapshotting {
		floor := m.minIndex
		*m = *newMirror()
		m.minIndex = floor
		m.snapshotting = true
	}
	for _, c := range msg.GetChanges() {
		remove := c.GetAction() == "remove"
		switch {
		case c.GetSpec() != nil:
			s := c.GetSpec()
			m.specs[taskSpecKey{s.GetServiceId(), s.GetVersion()}] = s.GetSpec()
		case c.GetTask() != nil:
			t := c.GetTask()
			if t.GetSpec() == nil {
				// Shared by the tasks of the version, which read it only.
				t.Spec = m.specs[taskSpecKey{t.GetServiceId(), t.GetSpecVersion()}]
			}
			setOrDelete(m.tasks, t.GetId(), t, remove)
		case c.GetService() != nil:
			setOrDelete(m.services, c.GetService().GetId(), c.GetService(), remove)
		case c.GetNode() != nil:
			setOrDelete(m.nodes, c.GetNode().GetId(), c.GetNode(), remove)
		}
	}
	m.index = max(m.index, msg.GetIndex())
	if !msg.GetSnapshot() || msg.GetSnapshotDone() {
		m.snapshotting, m.ready = false, true
	}
}

// resync takes in the end of a watch that cannot go on. A watcher that
// read too slowly (ResourceExhausted) resumes from its index: the
// manager's history usually still holds the changes since, and reading
// them costs far less than every object of a large cluster again. When
// the history does not (OutOfRange), it reads the current objects.
func (m *mirror) resync(stream grpc.ServerStreamingClient[shoalpb.WatchMessage]) {
	_, err := stream.Recv() // the status the stream ends with says which
	if status.Code(err) != codes.ResourceExhausted {
		m.index, m.ready = 0, false
	}
}

func setOrDelete[T any](m map[string]T, id string, v T, remove bool) {
	if remove {
		delete(m, id)
		return
	}
	m[id] = v
}

// cluster is the copy in the shape the waits read.
func (m *mirror) cluster() *cluster {
	cl := &cluster{services: map[string]*shoalpb.Service{}, hosts: map[string]string{}}
	for id, s := range m.services {
		cl.services[id] = s
	}
	for _, n := range m.nodes {
		cl.nodes = append(cl.nodes, &shoalpb.NodeSummary{Node: n})
		cl.hosts[n.GetId()] = n.GetHostname()
	}
	for _, t := range m.tasks {
		cl.tasks = append(cl.tasks, t)
	}
	cl.tasks = sortTasks(cl.tasks)
	return cl
}

// watchMirror keeps m up to date from a watch with these selectors until
// ctx ends, calling each after every message once m is ready. A stream
// that breaks (a manager stopped, a leader change) is resumed on the next
// manager from the last index seen, so no change is missed; a resync
// signal starts again from the current objects. It returns errNoWatch at
// once when the manager has no Watch.
func watchMirror(ctx context.Context, c *client, sel []*shoalpb.WatchSelector, m *mirror, each func()) error {
	for {
		if !m.ready {
			// A snapshot cut off half way is no base to resume from:
			// read the current objects again, from the start.
			m.index, m.snapshotting = 0, false
		}
		err := c.call(ctx, func(ctx context.Context, cc shoalpb.ControlClient) error {
			// specs_once: a task's spec comes once per version, not with
			// every change of every task (a manager that predates it
			// sends the specs with the tasks, which apply keeps).
			stream, err := cc.Watch(ctx, &shoalpb.WatchRequest{Selectors: sel, SinceIndex: m.index, MinIndex: max(m.minIndex, m.index),
				SpecsOnce: true})
			if err != nil {
				return err
			}
			m.newStream()
			for {
				msg, err := stream.Recv()
				if err != nil {
					return err
				}
				if msg.GetResyncRequired() {
					m.resync(stream)
					return nil
				}
				m.apply(msg)
				if m.ready {
					each()
				}
			}
		})
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case status.Code(err) == codes.Unimplemented:
			return errNoWatch
		case err == nil, errors.Is(err, io.EOF), status.Code(err) == codes.ResourceExhausted, status.Code(err) == codes.OutOfRange:
		default:
			var un *unavailableError
			if !errors.As(err, &un) {
				return err
			}
			// No manager answers now: try again after a pause.
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// taskPageSize is how many tasks shoalctl asks for in one ListTasks call.
const taskPageSize = 5000

// listTasks lists every task req selects, page by page.
func listTasks(ctx context.Context, c *client, req *shoalpb.ListTasksRequest) (*shoalpb.ListTasksResponse, error) {
	out := &shoalpb.ListTasksResponse{}
	page := &shoalpb.ListTasksRequest{Service: req.GetService(), Node: req.GetNode(), Stale: req.GetStale(), PageSize: taskPageSize}
	for {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ListTasks, page)
		if err != nil {
			return nil, err
		}
		out.Tasks = append(out.Tasks, resp.GetTasks()...)
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		page.PageToken = resp.GetNextPageToken()
	}
}

// listPageSize is how many services or nodes shoalctl asks for in one
// ListServices or ListNodes call.
const listPageSize = 5000

// listServicePages lists every service, page by page.
func listServicePages(ctx context.Context, c *client, stale bool) (*shoalpb.ListServicesResponse, error) {
	out := &shoalpb.ListServicesResponse{}
	page := &shoalpb.ListServicesRequest{Stale: stale, PageSize: listPageSize}
	for {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ListServices, page)
		if err != nil {
			return nil, err
		}
		out.Services = append(out.Services, resp.GetServices()...)
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		page.PageToken = resp.GetNextPageToken()
	}
}

// listNodes lists every node, page by page.
func listNodes(ctx context.Context, c *client, stale bool) (*shoalpb.ListNodesResponse, error) {
	out := &shoalpb.ListNodesResponse{}
	page := &shoalpb.ListNodesRequest{Stale: stale, PageSize: listPageSize}
	for {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ListNodes, page)
		if err != nil {
			return nil, err
		}
		out.Nodes = append(out.Nodes, resp.GetNodes()...)
		if resp.GetNextPageToken() == "" {
			return out, nil
		}
		page.PageToken = resp.GetNextPageToken()
	}
}
