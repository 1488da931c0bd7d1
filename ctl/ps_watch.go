package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// clearScreen moves a terminal's cursor home and clears it, so a watched
// table is redrawn in place.
const clearScreen = "\x1b[H\x1b[2J"

// watchTasks prints the table of the tasks sel passes (and f, and keep
// unless it is nil), then prints it again each time a change from Watch
// alters it, until ctx ends (Ctrl-C). service ps and node ps both watch
// through it. The nodes are watched too, for the NODE column. A broken
// stream resumes from the last index seen; a resync reads every object
// again (see watchMirror).
func (g *globals) watchTasks(ctx context.Context, c *client, sel []*shoalpb.WatchSelector, f filters, keep func(*shoalpb.Task) bool, rf readFlags) error {
	if rf.quiet || g.structured(outputTable) {
		return fieldErr("--watch", "true", "prints a table: leave out --quiet and --output json|yaml")
	}
	sel = append(sel, &shoalpb.WatchSelector{Kind: "node"})
	m := newMirror()
	var last []byte
	tty := isTerminal(g.app.Out)
	var drawErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := watchMirror(ctx, c, sel, m, func() {
		if drawErr != nil {
			return
		}
		cl := m.cluster()
		var tasks []*shoalpb.Task
		for _, t := range cl.tasks {
			if f.task(t, cl.hosts) && (keep == nil || keep(t)) {
				tasks = append(tasks, t)
			}
		}
		var buf bytes.Buffer
		w, err := rf.out(&buf)
		if err == nil {
			err = writeTaskTable(w, tasks, cl.hosts, g.app.Now(), rf.noTrunc)
		}
		if err != nil {
			drawErr = err
			cancel()
			return
		}
		if bytes.Equal(buf.Bytes(), last) {
			return
		}
		switch {
		case tty:
			fmt.Fprint(g.app.Out, clearScreen)
		case last != nil:
			fmt.Fprintln(g.app.Out) // a blank line between the tables
		}
		last = buf.Bytes()
		if _, drawErr = g.app.Out.Write(last); drawErr != nil {
			cancel()
		}
	})
	switch {
	case drawErr != nil:
		return drawErr
	case errors.Is(err, errNoWatch):
		return fmt.Errorf("--watch: %w; upgrade the managers or leave --watch out", err)
	case ctx.Err() != nil:
		return nil // interrupted: the normal end
	}
	return rpcError("watch", err)
}
