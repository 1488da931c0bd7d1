package raftstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/shoal-sched/shoal/api"
)

// localRaft is a stand-in for raft.Raft.Apply at the proposer's seam: it
// applies each entry to a real FSM at once, in the order it is handed
// entries, and holds every future's answer until release is closed, so a
// test decides what is in flight while more proposals arrive.
type localRaft struct {
	fsm     *fsm
	release chan struct{}
	fail    error // every entry's error, if set (nothing is applied then)

	mu      sync.Mutex
	entries [][]byte
}

func newLocalRaft() *localRaft {
	return &localRaft{fsm: &fsm{state: NewState()}, release: make(chan struct{})}
}

func (l *localRaft) apply(data []byte, _ time.Duration) raft.ApplyFuture {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, data)
	f := &localFuture{release: l.release, index: uint64(len(l.entries)), err: l.fail}
	if l.fail == nil {
		f.resp = l.fsm.Apply(&raft.Log{Index: f.index, Type: raft.LogCommand, Data: data})
	}
	return f
}

func (l *localRaft) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

type localFuture struct {
	release <-chan struct{}
	index   uint64
	resp    any
	err     error
}

func (f *localFuture) Error() error  { <-f.release; return f.err }
func (f *localFuture) Index() uint64 { return f.index }
func (f *localFuture) Response() any { return f.resp }

func encode(t *testing.T, cmd Command) []byte {
	t.Helper()
	b, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func createRequest(rid, id, name string) Request {
	return Request{ID: rid, Command: CreateService{Service: testService(id, name, 1)}}
}

// fillInFlight submits two proposals and waits until both entries are in
// Raft, so that whatever is submitted next queues behind them.
func fillInFlight(t *testing.T, p *proposer, l *localRaft) []*proposal {
	t.Helper()
	var first []*proposal
	for i, name := range []string{"a", "b"} {
		first = append(first, p.submit(encode(t, createRequest("r-"+name, "id-"+name, name))))
		waitFor(t, 5*time.Second, "proposal "+name+" never reached raft", func() bool { return l.count() == i+1 })
	}
	return first
}

func TestProposerBatchesWhatArrivesWhileInFlight(t *testing.T) {
	l := newLocalRaft()
	p := newProposer(l.apply, time.Second, DefaultMaxProposalBatch)
	first := fillInFlight(t, p, l)

	// Queued behind the two in flight: five new services, one whose name
	// a queued command takes first (refused), and a retry of a request in
	// the same batch (answered with the first result, not applied again).
	cmds := []Command{
		createRequest("r-0", "id-0", "s0"),
		createRequest("r-1", "id-1", "s1"),
		createRequest("r-x", "id-x", "s1"),
		createRequest("r-2", "id-2", "s2"),
		createRequest("r-0", "id-0", "s0"),
		createRequest("r-3", "id-3", "s3"),
		createRequest("r-4", "id-4", "s4"),
	}
	var queued []*proposal
	for _, c := range cmds {
		queued = append(queued, p.submit(encode(t, c)))
	}
	close(l.release)
	for i, pr := range first {
		if o := <-pr.done; o.err != nil || o.res.err != nil || o.index != uint64(i+1) {
			t.Errorf("in-flight proposal %d: %+v, want entry %d without error", i, o, i+1)
		}
	}
	for i, pr := range queued {
		o := <-pr.done
		if o.err != nil || o.index != 3 {
			t.Fatalf("queued proposal %d: %+v, want it in entry 3", i, o)
		}
		want := cmds[i].(Request).Command.(CreateService).Service.ID
		switch i {
		case 2:
			if !errors.Is(o.res.err, ErrAlreadyExists) {
				t.Errorf("proposal %d (name taken in the same batch): err %v, want ErrAlreadyExists", i, o.res.err)
			}
		case 4:
			if o.res.err != nil || o.res.firstIndex != 3 {
				t.Errorf("repeated request: %+v, want the first result with first index 3", o.res)
			}
			fallthrough
		default:
			if svc, ok := o.res.value.(*api.Service); !ok || svc.ID != want {
				t.Errorf("proposal %d answered %#v, want its own service %s", i, o.res.value, want)
			}
		}
	}
	if n := l.count(); n != 3 {
		t.Errorf("%d entries for 9 commands, want 3 (two alone, then one batch)", n)
	}
	v := l.fsm.state.Read()
	if got := v.ServiceByName("s1"); got == nil || got.ID != "id-1" {
		t.Errorf("s1 = %+v, want the first command's id-1 (the refused one changed nothing)", got)
	}
	if n := len(v.Services()); n != 7 {
		t.Errorf("%d services, want 7 (a, b, s0–s4)", n)
	}
	if n := len(v.requests()); n != 7 {
		t.Errorf("%d requests remembered, want 7 (the refused one and the repeat are not)", n)
	}
}

func TestProposerLeadershipLostFailsEveryWaiter(t *testing.T) {
	l := newLocalRaft()
	l.fail = raft.ErrLeadershipLost
	p := newProposer(l.apply, time.Second, DefaultMaxProposalBatch)
	all := fillInFlight(t, p, l)
	for i := range 5 {
		all = append(all, p.submit(encode(t, createRequest(fmt.Sprintf("r-%d", i), fmt.Sprintf("id-%d", i), fmt.Sprintf("s%d", i)))))
	}
	close(l.release)
	for i, pr := range all {
		if o := <-pr.done; !errors.Is(o.err, raft.ErrLeadershipLost) {
			t.Errorf("proposal %d: %+v, want ErrLeadershipLost", i, o)
		}
	}
	if n := l.count(); n != 3 {
		t.Errorf("%d entries, want 3", n)
	}
}

func TestProposerWithdrawnIsNeverProposed(t *testing.T) {
	l := newLocalRaft()
	p := newProposer(l.apply, time.Second, DefaultMaxProposalBatch)
	first := fillInFlight(t, p, l)
	late := p.submit(encode(t, createRequest("r-late", "id-late", "late")))
	if !p.withdraw(late) {
		t.Fatal("a queued proposal could not be withdrawn")
	}
	if p.withdraw(first[0]) {
		t.Error("a proposal already in raft was withdrawn")
	}
	close(l.release)
	for _, pr := range first {
		<-pr.done
	}
	waitFor(t, 5*time.Second, "the proposer never went idle", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.running == 0
	})
	if n := l.count(); n != 2 {
		t.Errorf("%d entries, want 2 (the withdrawn proposal is not sent)", n)
	}
	if l.fsm.state.Read().ServiceByName("late") != nil {
		t.Error("the withdrawn command was applied")
	}
}

func TestProposerTakeBounds(t *testing.T) {
	big := strings.Repeat("x", maxBatchBytes/2+1)
	tests := []struct {
		name  string
		max   int
		sizes []int
		want  []int // batch sizes in order
	}{
		{"count", 3, []int{1, 1, 1, 1, 1, 1, 1}, []int{3, 3, 1}},
		{"bytes", 100, []int{len(big), len(big), 1}, []int{1, 2}},
		{"one over the byte bound goes alone", 100, []int{2 * maxBatchBytes, 1}, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &proposer{max: tt.max, running: 1}
			for _, n := range tt.sizes {
				p.queue = append(p.queue, &proposal{data: make([]byte, n)})
			}
			var got []int
			for b := p.take(); b != nil; b = p.take() {
				got = append(got, len(b))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("batches %v, want %v", got, tt.want)
			}
		})
	}
}

// TestBatchEntryDecodes: the hand-written batch envelope reads back as the
// Batch of its commands.
func TestBatchEntryDecodes(t *testing.T) {
	cmds := []Command{createRequest("r-1", "id-1", "s1"), RemoveService{ID: "id-9", At: t0}}
	var batch []*proposal
	for _, c := range cmds {
		batch = append(batch, &proposal{data: encode(t, c)})
	}
	got, err := DecodeCommand(batchEntry(batch))
	if err != nil {
		t.Fatal(err)
	}
	want, err := DecodeCommand(encode(t, Batch{Commands: cmds}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batch entry decodes to\n%#v\nwant\n%#v", got, want)
	}
}
