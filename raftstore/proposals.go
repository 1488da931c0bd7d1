package raftstore

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/shoal-sched/shoal/raftstore/commandpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Proposal batching. Every log entry costs the leader a log write and an
// fsync, a round trip to each follower and their fsyncs, and the FSM a
// transaction; hashicorp/raft shares the fsync among entries that queue up
// together, but not the rest. The proposer gathers the commands that
// callers hand to Apply while earlier entries are in flight into one Batch
// entry: the FSM applies each command of it on its own (a rejected one
// changes nothing, the others still apply, as for any Batch) and every
// caller gets its own command's result.
const (
	// DefaultMaxProposalBatch is how many commands one entry gathers at
	// most (Config.MaxProposalBatch).
	DefaultMaxProposalBatch = 256
	// maxBatchBytes bounds the encoded commands one entry gathers, well
	// below MaxEntryBytes, so a batch replicates and fsyncs in about the
	// time of its largest command. A command larger than this goes alone.
	maxBatchBytes = 1 << 20
	// proposalsInFlight is how many entries the proposer keeps in Raft at
	// once. With one, callers that arrive during a commit wait for the
	// whole of it; with two, the next batch replicates while the first is
	// applied, and Raft still writes both with one fsync when they meet.
	proposalsInFlight = 2
)

// proposer queues proposals and sends them to Raft in batches.
type proposer struct {
	apply   applyFunc
	timeout time.Duration // the apply's enqueue timeout
	max     int

	mu      sync.Mutex
	queue   []*proposal
	running int // goroutines sending batches (at most proposalsInFlight)

	// dispatch keeps the entries in the order their proposals were
	// queued: taking a batch and handing it to Raft is one step.
	dispatch sync.Mutex
}

// proposal is one caller's command on its way through the proposer.
type proposal struct {
	data  []byte // the command's envelope, encoded
	taken bool   // in a batch handed to Raft (guarded by proposer.mu)
	done  chan outcome
}

// outcome is what Raft made of a proposal: its command's result and the
// entry's index, or Raft's error for the whole entry.
type outcome struct {
	res   result
	index uint64
	err   error
}

// applyFunc hands one entry to Raft (raft.Raft.Apply; a test's local
// stand-in at this seam).
type applyFunc func(data []byte, timeout time.Duration) raft.ApplyFuture

func newProposer(apply applyFunc, timeout time.Duration, max int) *proposer {
	return &proposer{apply: apply, timeout: timeout, max: max}
}

// submit queues data and returns the proposal to wait on.
func (p *proposer) submit(data []byte) *proposal {
	pr := &proposal{data: data, done: make(chan outcome, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, pr)
	start := p.running < proposalsInFlight
	if start {
		p.running++
	}
	p.mu.Unlock()
	if start {
		go p.run()
	}
	return pr
}

// withdraw takes pr out of the queue if no batch has taken it yet, and
// reports whether it did: the command was then never proposed.
func (p *proposer) withdraw(pr *proposal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr.taken {
		return false
	}
	if i := slices.Index(p.queue, pr); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
	}
	return true
}

// run sends batches until the queue is empty.
func (p *proposer) run() {
	for {
		p.dispatch.Lock()
		batch := p.take()
		if len(batch) == 0 {
			p.dispatch.Unlock()
			return
		}
		f := p.apply(batchEntry(batch), p.timeout)
		p.dispatch.Unlock()
		deliver(batch, f)
	}
}

// take removes the next batch from the queue: the oldest proposals, as
// many as fit in max commands and maxBatchBytes (at least one). With the
// queue empty it returns nil and counts this goroutine out.
func (p *proposer) take() []*proposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		p.running--
		return nil
	}
	n, size := 0, 0
	for n < len(p.queue) && n < p.max {
		size += len(p.queue[n].data)
		if n > 0 && size > maxBatchBytes {
			break
		}
		n++
	}
	batch := slices.Clone(p.queue[:n])
	for _, pr := range batch {
		pr.taken = true
	}
	p.queue = slices.Delete(p.queue, 0, n)
	return batch
}

// batchEntry encodes the batch as one log entry: a lone proposal as it is
// (the entry is then what an unbatched Apply writes), several as a BATCH
// envelope whose sub-envelopes are the proposals' own bytes. Only the
// fields a Batch has are written, in field order, as proto.Marshal would.
func batchEntry(batch []*proposal) []byte {
	if len(batch) == 1 {
		return batch[0].data
	}
	size := 2
	for _, pr := range batch {
		size += 1 + protowire.SizeBytes(len(pr.data))
	}
	b := make([]byte, 0, size)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(commandpb.CommandType_BATCH))
	for _, pr := range batch {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, pr.data)
	}
	return b
}

// deliver waits for the entry and hands each proposal its own outcome.
func deliver(batch []*proposal, f raft.ApplyFuture) {
	if err := f.Error(); err != nil {
		for _, pr := range batch {
			pr.done <- outcome{err: err}
		}
		return
	}
	index := f.Index()
	res, _ := f.Response().(result)
	if len(batch) == 1 {
		batch[0].done <- outcome{res: res, index: index}
		return
	}
	subs, ok := res.value.([]BatchResult)
	if res.err != nil || !ok || len(subs) != len(batch) {
		// A Batch never fails as a whole; this is a bug, and every
		// caller is told so rather than handed another's result.
		err := fmt.Errorf("batch entry %d: answered %T (%v) for %d commands: %w", index, res.value, res.err, len(batch), errBatchAnswer)
		for _, pr := range batch {
			pr.done <- outcome{res: result{err: err}, index: index}
		}
		return
	}
	for i, pr := range batch {
		pr.done <- outcome{res: result{value: subs[i].Value, err: subs[i].Err, firstIndex: subs[i].FirstIndex}, index: index}
	}
}

// errBatchAnswer: the FSM's answer to a batch entry does not match it.
var errBatchAnswer = errors.New("batch answer does not match its commands")
