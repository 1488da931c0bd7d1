package lab

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Failover is the timeline of one host failure, measured from the lab
// command's side by polling the managers (stale reads, every 10 ms).
type Failover struct {
	Host     string
	Lost     int           // replicas that were on the host
	Detected time.Duration // kill → node marked down
	Placed   time.Duration // kill → every replacement assigned to a survivor
	Running  time.Duration // kill → every replica running on a survivor
}

func (f Failover) String() string {
	return fmt.Sprintf("%s: %d replicas lost; node down after %s, replacements placed after %s, all running after %s",
		f.Host, f.Lost, ms(f.Detected), ms(f.Placed), ms(f.Running))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// busiestAgent returns the agent host running the most replicas of service.
func (l *Lab) busiestAgent(ctx context.Context, c *client, service string) (*Host, int, error) {
	tasks, err := c.tasks(ctx, service)
	if err != nil {
		return nil, 0, err
	}
	nodes, err := c.nodes(ctx)
	if err != nil {
		return nil, 0, err
	}
	hostOf := map[string]string{}
	for _, n := range nodes {
		hostOf[n.GetId()] = n.GetHostname()
	}
	count := map[string]int{}
	for _, t := range tasks {
		if t.GetDesiredState() == "running" && t.GetStatus().GetState() == "running" {
			count[hostOf[t.GetNodeId()]]++
		}
	}
	var best *Host
	for _, h := range l.ByRole(RoleAgent) {
		if best == nil || count[h.Name] > count[best.Name] {
			best = h
		}
	}
	if best == nil || count[best.Name] == 0 {
		return nil, 0, fmt.Errorf("service %q has no running replica on any agent host", service)
	}
	return best, count[best.Name], nil
}

// converged reports whether want replicas of service are running, none of
// them on node excluded, and whether all of them are at least assigned.
func converged(tasks []*shoalpb.Task, want int, excluded string) (placed, running bool) {
	assigned, up := 0, 0
	for _, t := range tasks {
		if t.GetDesiredState() != "running" || t.GetNodeId() == "" || t.GetNodeId() == excluded {
			continue
		}
		assigned++
		if t.GetStatus().GetState() == "running" {
			up++
		}
	}
	return assigned >= want, up >= want
}

// MeasureFailover breaks the busiest agent host of service (kill or cut) and
// times until all want replicas run on the other hosts.
func (l *Lab) MeasureFailover(ctx context.Context, service string, want int, cut bool) (Failover, error) {
	c, err := l.dial()
	if err != nil {
		return Failover{}, err
	}
	defer c.close()
	h, lost, err := l.busiestAgent(ctx, c, service)
	if err != nil {
		return Failover{}, err
	}
	nodeID, err := l.nodeID(ctx, c, h.Name)
	if err != nil {
		return Failover{}, err
	}
	f := Failover{Host: h.Name, Lost: lost}
	t0 := time.Now()
	if cut {
		err = l.Cut(h.Name)
	} else {
		_, err = l.Kill(h.Name)
	}
	if err != nil {
		return f, err
	}
	err = waitFor(ctx, 60*time.Second, func() error {
		if f.Detected == 0 {
			if nodes, err := c.nodes(ctx); err == nil {
				for _, n := range nodes {
					if n.GetId() == nodeID && n.GetStatus() == "down" {
						f.Detected = time.Since(t0)
					}
				}
			}
		}
		tasks, err := c.tasks(ctx, service)
		if err != nil {
			return err
		}
		placed, running := converged(tasks, want, nodeID)
		if placed && f.Placed == 0 {
			f.Placed = time.Since(t0)
		}
		if running {
			f.Running = time.Since(t0)
			return nil
		}
		return fmt.Errorf("replicas of %s not all running on the other hosts", service)
	})
	if f.Detected == 0 {
		f.Detected = f.Running // the replicas moved before "down" was seen
	}
	return f, err
}

func (l *Lab) nodeID(ctx context.Context, c *client, hostname string) (string, error) {
	nodes, err := c.nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.GetHostname() == hostname {
			return n.GetId(), nil
		}
	}
	return "", fmt.Errorf("no node with hostname %q", hostname)
}

// Summary is the median and worst of a series of durations.
type Summary struct{ Median, Worst time.Duration }

func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: med, Worst: s[len(s)-1]}
}
