package dispatcher

import (
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// Heartbeat pacing. Every agent's heartbeat costs the leader a message in
// and an answer out, and both sides end a session that is silent for a few
// heartbeats. With a fixed 300 ms interval, a thousand agents sent the
// leader 3,300 heartbeats a second, and any stall of the leader longer
// than 900 ms (a burst of 10,000 new tasks on a loaded two-core machine)
// ended hundreds of sessions at once; their reconnects (a TLS handshake,
// a hello, a full assignment set each) loaded it further, and the sessions
// kept dropping in waves for minutes. So the leader sets the period from
// the number of sessions it holds, as Nomad scales its heartbeat TTLs: its
// heartbeat load stays near heartbeatsPerSecond, and the silence every
// side allows grows with the period. A small cluster keeps the agents'
// own 300 ms, and its sub-second detection.
//
// A heartbeat costs the leader about 180 µs of CPU (a read, an answer, a
// TLS record each way, three goroutine wake-ups): at 1,000 a second an
// idle leader used 18 % of a core for nothing else. At 200 a second, 1,000
// agents beat every 5 s and 5,000 every 25 s. A long period does not slow
// the detection of a dead node: gossip notices it, and the leader then
// probes the node's session rather than waiting out its silence
// (liveness.suspect).
const (
	heartbeatsPerSecond = 200
	// minHeartbeatPeriod is the agents' default interval: the deadlines
	// below (sessionTTL, failConfirm) are set for it.
	minHeartbeatPeriod = 300 * time.Millisecond
	maxHeartbeatPeriod = 30 * time.Second
	// periodStep rounds the period, so that agents are not told a new one
	// for every session that comes or goes.
	periodStep = 100 * time.Millisecond
)

// heartbeatPeriod is the period the leader asks of its agents while it
// holds n sessions.
func heartbeatPeriod(n int) time.Duration {
	p := time.Duration(n) * time.Second / heartbeatsPerSecond
	p = (p + periodStep - 1) / periodStep * periodStep
	return min(max(p, minHeartbeatPeriod), maxHeartbeatPeriod)
}

// inPeriods scales a deadline set for minHeartbeatPeriod to period. It
// divides first: a reconnect window of a minute times a period in
// nanoseconds does not fit an int64 (it wrapped to a negative window that
// downed every node at once).
func inPeriods(d, period time.Duration) time.Duration {
	return d/minHeartbeatPeriod*period + d%minHeartbeatPeriod*period/minHeartbeatPeriod
}

// pacer answers heartbeats with the current period; the answer is built
// once per period and shared by every session (a message that is only
// read). The period follows the most sessions held within peakHold: when
// sessions drop in numbers, a period that shrank with them would shorten
// the deadlines of the agents still beating at the longer one, and end
// more sessions.
//
// It also counts the nodes that should hold a session (from the state):
// a new leader holds no session yet, and the agents it told the shortest
// period while a thousand of them reconnect would end their sessions at
// the first stall of that storm, and reconnect again.
type pacer struct {
	sessions *sessionTable
	now      func() time.Time
	answer   atomic.Pointer[pacedAnswer]
	// nodes counts the nodes that should hold a session (nil: none).
	nodes func() int

	mu        sync.Mutex
	peak      int
	peakAt    time.Time
	counted   int // nodes() as of countedAt
	countedAt time.Time
}

// nodeRecount is how often the pacer counts the nodes in the state again:
// the count moves when nodes join or go, and a count of 5,000 nodes every
// second was a tenth of an idle leader's CPU.
const nodeRecount = 10 * time.Second

// peakHold is how long the pacer remembers the most sessions it saw.
const peakHold = time.Minute

func newPacer(sessions *sessionTable, now func() time.Time, nodes func() int) *pacer {
	return &pacer{sessions: sessions, now: now, nodes: nodes}
}

type pacedAnswer struct {
	period time.Duration
	msg    *shoalpb.ManagerMessage
}

// period is the heartbeat period at the most sessions held lately.
func (p *pacer) period() time.Duration {
	n, now := p.sessions.count(), p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nodes != nil && (p.countedAt.IsZero() || now.Sub(p.countedAt) >= nodeRecount) {
		p.counted, p.countedAt = p.nodes(), now
	}
	n = max(n, p.counted)
	if n >= p.peak || now.Sub(p.peakAt) > peakHold {
		p.peak, p.peakAt = n, now
	}
	return heartbeatPeriod(p.peak)
}

// probe asks an agent for a heartbeat at once (with the period, as every
// heartbeat from the leader carries it).
func (p *pacer) probe() *shoalpb.ManagerMessage {
	return &shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_Heartbeat{
		Heartbeat: &shoalpb.Heartbeat{Period: durationpb.New(p.period()), Probe: true},
	}}
}

// heartbeat is the answer to an agent's heartbeat.
func (p *pacer) heartbeat() *shoalpb.ManagerMessage {
	period := p.period()
	if a := p.answer.Load(); a != nil && a.period == period {
		return a.msg
	}
	a := &pacedAnswer{period: period, msg: &shoalpb.ManagerMessage{Msg: &shoalpb.ManagerMessage_Heartbeat{
		Heartbeat: &shoalpb.Heartbeat{Period: durationpb.New(period)},
	}}}
	p.answer.Store(a)
	return a.msg
}
