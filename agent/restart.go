package agent

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// A planned restart: when Run's context ends, an agent with a restart hold
// (and without LeaveOnStop) tells the leader over its session that it stops
// now and will be back within the hold, waits briefly for the answer, and
// stops without leaving gossip, its containers running. The leader holds
// the node's tasks until then; the agent, started again, adopts them.

// DefaultRestartHold is the hold shoal-agent asks for when it stops.
const DefaultRestartHold = 30 * time.Second

// restartAckTimeout bounds the wait for the leader's answer to a restart
// notice (a Raft commit) before the agent stops anyway.
const restartAckTimeout = 2 * time.Second

// announcesRestart reports whether a stop is announced as a restart.
func (a *Agent) announcesRestart() bool { return !a.cfg.LeaveOnStop && a.cfg.RestartHold > 0 }

// announceRestart tells the leader the agent stops now and will be back
// within its restart hold, and waits (a bounded time) for the answer. The
// tasks' latest statuses go first, so that the leader holds them as they
// are.
func (a *Agent) announceRestart(sctx context.Context, stream shoalpb.Dispatcher_SessionClient, acks <-chan *shoalpb.RestartAck) {
	if !a.announcesRestart() {
		return
	}
	hold := a.cfg.RestartHold
	err := sendStatuses(stream, a.w.takeOutbox())
	if err == nil {
		err = stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Restarting{
			Restarting: &shoalpb.Restarting{Hold: durationpb.New(hold)},
		}})
	}
	if err != nil {
		a.log.Warn("could not send the restart notice; the leader will treat the node as lost", "err", err)
		return
	}
	t := time.NewTimer(restartAckTimeout)
	defer t.Stop()
	select {
	case ack := <-acks:
		if ack.GetError() != "" {
			a.log.Warn("the leader refused the restart notice; it will treat the node as lost", "reason", ack.GetError())
			return
		}
		a.log.Info("stopping for a restart: the leader holds this node's tasks until the deadline", "hold", hold,
			"deadline", ack.GetDeadline().AsTime().Format(time.RFC3339))
	case <-t.C:
		a.log.Warn("no answer to the restart notice; the leader may treat the node as lost", "waited", restartAckTimeout)
	case <-sctx.Done():
		a.log.Warn("session ended before the restart notice was answered", "cause", context.Cause(sctx))
	}
}
