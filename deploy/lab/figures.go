package lab

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// running counts the replicas of service that run, leaving out node
// excluded (its tasks do not count as "elsewhere").
func running(tasks []*shoalpb.Task, excluded string) int {
	n := 0
	for _, t := range tasks {
		if t.GetDesiredState() == "running" && t.GetStatus().GetState() == "running" && t.GetNodeId() != excluded {
			n++
		}
	}
	return n
}

// timeUntilRunning polls until want replicas of service run off node
// excluded and returns how long it took from t0.
func (l *Lab) timeUntilRunning(ctx context.Context, c *client, t0 time.Time, want int, excluded string) (time.Duration, error) {
	err := waitFor(ctx, 60*time.Second, func() error {
		tasks, err := c.tasks(ctx, DemoService)
		if err != nil {
			return err
		}
		if n := running(tasks, excluded); n < want {
			return fmt.Errorf("%d of %d replicas of %s running", n, want, DemoService)
		}
		return nil
	})
	return time.Since(t0), err
}

// MeasureScaleAndDrain times, on a running demo service of `from`
// replicas: scaling it to `to` until all run, then draining the busiest
// agent host until its replicas run elsewhere, then making it active again
// and scaling back.
func (l *Lab) MeasureScaleAndDrain(ctx context.Context, out io.Writer, from, to int) error {
	c, err := l.dial()
	if err != nil {
		return err
	}
	defer c.close()
	t0 := time.Now()
	err = c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
		_, err := ctl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: DemoService, Replicas: uint64(to)})
		return err
	})
	if err != nil {
		return fmt.Errorf("scale %s to %d: %w", DemoService, to, err)
	}
	took, err := l.timeUntilRunning(ctx, c, t0, to, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%-26s %8s\n", fmt.Sprintf("scale %d -> %d (all running)", from, to), ms(took))

	h, n, err := l.busiestAgent(ctx, c, DemoService)
	if err != nil {
		return err
	}
	nodeID, err := l.nodeID(ctx, c, h.Name)
	if err != nil {
		return err
	}
	setAvailability := func(a string) error {
		return c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
			_, err := ctl.UpdateNode(ctx, &shoalpb.UpdateNodeRequest{Node: nodeID, Availability: a})
			return err
		})
	}
	t0 = time.Now()
	if err := setAvailability("drain"); err != nil {
		return err
	}
	took, err = l.timeUntilRunning(ctx, c, t0, to, nodeID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%-26s %8s\n", fmt.Sprintf("drain %s (%d replicas moved)", h.Name, n), ms(took))
	if err := setAvailability("active"); err != nil {
		return err
	}
	err = c.each(ctx, func(ctx context.Context, ctl shoalpb.ControlClient) error {
		_, err := ctl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: DemoService, Replicas: uint64(from)})
		return err
	})
	if err != nil {
		return err
	}
	// Settle before the next measurement: exactly `from` replicas, all running.
	return waitFor(ctx, 60*time.Second, func() error {
		tasks, err := c.tasks(ctx, DemoService)
		if err != nil {
			return err
		}
		live := 0
		for _, t := range tasks {
			if t.GetDesiredState() == "running" || t.GetStatus().GetState() == "running" {
				live++
			}
		}
		if live != from || running(tasks, "") != from {
			return fmt.Errorf("%s not yet back to %d replicas (%d live)", DemoService, from, live)
		}
		return nil
	})
}
