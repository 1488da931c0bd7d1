package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/shoal-sched/shoal/raftstore"
)

const (
	// maxBatch bounds how many commands go into one Raft entry.
	maxBatch = 256
	// maxInFlight is how many entries the proposer has in Raft at once.
	// While they commit, new commands queue and go out together next.
	maxInFlight = 2
	// proposalQueue is how many commands may wait for a batch.
	proposalQueue = 4096
)

// errProposerStopped answers commands still queued when the manager stops.
var errProposerStopped = errors.New("manager is stopping: the command was not proposed")

// proposer commits concurrent commands together: while earlier entries are
// in Raft, new commands queue, and the queue goes out as one Batch entry,
// each command with its own result. A lone command goes out as itself, so
// an idle manager adds no latency. It is off unless Config.WriteBatching:
// Raft's own group commit already shares one log write and fsync among
// concurrent entries, and measured faster (see BenchmarkControlWrites).
type proposer struct {
	next    raftstore.Applier
	queue   chan *proposal
	slots   chan struct{}
	stopped chan struct{}
}

type proposal struct {
	cmd  raftstore.Command
	done chan outcome
}

type outcome struct {
	resp raftstore.Response
	err  error
}

func newProposer(next raftstore.Applier) *proposer {
	return &proposer{
		next:    next,
		queue:   make(chan *proposal, proposalQueue),
		slots:   make(chan struct{}, maxInFlight),
		stopped: make(chan struct{}),
	}
}

// Apply queues cmd and waits for its result. A Batch goes to Raft as it is.
func (p *proposer) Apply(ctx context.Context, cmd raftstore.Command) (raftstore.Response, error) {
	if _, ok := cmd.(raftstore.Batch); ok {
		return p.next.Apply(ctx, cmd)
	}
	pr := &proposal{cmd: cmd, done: make(chan outcome, 1)}
	select {
	case p.queue <- pr:
	case <-ctx.Done():
		return raftstore.Response{}, ctx.Err()
	case <-p.stopped:
		return raftstore.Response{}, errProposerStopped
	}
	select {
	case o := <-pr.done:
		return o.resp, o.err
	case <-ctx.Done():
		return raftstore.Response{}, ctx.Err()
	case <-p.stopped:
		return raftstore.Response{}, errProposerStopped
	}
}

// Run sends batches to Raft until ctx ends.
func (p *proposer) Run(ctx context.Context) {
	defer close(p.stopped)
	for {
		var first *proposal
		select {
		case <-ctx.Done():
			return
		case first = <-p.queue:
		}
		// Waiting for a slot is what lets the next batch grow.
		select {
		case <-ctx.Done():
			return
		case p.slots <- struct{}{}:
		}
		batch := []*proposal{first}
	collect:
		for len(batch) < maxBatch {
			select {
			case pr := <-p.queue:
				batch = append(batch, pr)
			default:
				break collect
			}
		}
		go func() {
			defer func() { <-p.slots }()
			p.commit(ctx, batch)
		}()
	}
}

// commit sends one batch and hands every proposal its own result.
func (p *proposer) commit(ctx context.Context, batch []*proposal) {
	if len(batch) == 1 {
		resp, err := p.next.Apply(ctx, batch[0].cmd)
		batch[0].done <- outcome{resp, err}
		return
	}
	cmds := make([]raftstore.Command, len(batch))
	for i, pr := range batch {
		cmds[i] = pr.cmd
	}
	resp, err := p.next.Apply(ctx, raftstore.Batch{Commands: cmds})
	results, ok := resp.Value.([]raftstore.BatchResult)
	if err == nil && (!ok || len(results) != len(batch)) {
		err = fmt.Errorf("batch of %d commands answered with %T: the store broke its contract", len(batch), resp.Value)
	}
	for i, pr := range batch {
		if err != nil {
			pr.done <- outcome{err: err}
			continue
		}
		pr.done <- outcome{raftstore.Response{Index: resp.Index, Value: results[i].Value}, results[i].Err}
	}
}
