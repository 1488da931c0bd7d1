package dispatcher_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/membership"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func (ta *testAgent) keysVersion() uint64 {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.a == nil {
		return 0
	}
	return ta.a.GossipKeysVersion()
}

// keyring reads the gossip keyring of the leader's state.
func (rc *raftCluster) keyring() (api.GossipKeyring, error) {
	v, err := rc.view()
	if err != nil {
		return api.GossipKeyring{}, err
	}
	ring, ok := v.GossipKeyring()
	if !ok {
		return ring, errors.New("no gossip keyring yet")
	}
	return ring, nil
}

// waitEveryoneOn waits until every running agent and manager gossips with
// keyring version, as the leader's gossip view shows them.
func (rc *raftCluster) waitEveryoneOn(version uint64, agents []*testAgent) {
	rc.t.Helper()
	managertest.WaitFor(rc.t, 30*time.Second, func() error {
		for _, ta := range agents {
			if got := ta.keysVersion(); got != version {
				return fmt.Errorf("agent %s gossips with keys version %d, want %d", ta.name, got, version)
			}
		}
		l := rc.c.Leader()
		if l < 0 {
			return errors.New("no leader")
		}
		alive := rc.c.Manager(l).GossipView().Alive
		if len(alive) != 3+len(agents) {
			return fmt.Errorf("the leader sees %d gossip members, want %d", len(alive), 3+len(agents))
		}
		for _, m := range alive {
			if m.KeysVersion != version {
				return fmt.Errorf("member %s advertises keys version %d, want %d", m.NodeID, m.KeysVersion, version)
			}
		}
		return nil
	})
}

// Agents get the cluster's gossip keys on their session and gossip only
// with them; removing a node rotates the key through every live node
// without any of them going down, and the old keys no longer get in.
func TestGossipKeysRotateWhenANodeIsRemoved(t *testing.T) {
	rc := startRaftCluster(t, 3)
	var first api.GossipKeyring
	managertest.WaitFor(t, 20*time.Second, func() (err error) {
		first, err = rc.keyring()
		return err
	})
	if len(first.Keys) != 1 || len(first.Keys[0].Key) != api.GossipKeySize {
		t.Fatalf("first keyring has %d keys (%d bytes), want one of %d bytes", len(first.Keys), len(first.Keys[0].Key), api.GossipKeySize)
	}
	live, gone := rc.agents[:2], rc.agents[2]
	rc.waitEveryoneOn(first.Version, rc.agents)

	goneID := gone.nodeID()
	gone.kill()
	rc.waitNode(goneID, api.NodeDown)
	l := rc.c.WaitLeader(10 * time.Second)
	events, cancel := rc.c.Manager(l).Raft().State().Subscribe(1 << 12)
	defer cancel()
	removed := time.Now()
	if _, err := rc.c.Client(l).RemoveNode(t.Context(), &shoalpb.RemoveNodeRequest{Node: goneID}); err != nil {
		t.Fatal(err)
	}
	var last api.GossipKeyring
	managertest.WaitFor(t, 30*time.Second, func() (err error) {
		if last, err = rc.keyring(); err != nil {
			return err
		}
		if last.Version < first.Version+3 || len(last.Keys) != 1 || last.RotateRequested {
			return fmt.Errorf("keyring at version %d with %d keys (requested %v), want a finished rotation", last.Version, len(last.Keys), last.RotateRequested)
		}
		return nil
	})
	if bytes.Equal(last.Keys[0].Key, first.Keys[0].Key) {
		t.Fatal("the rotation kept the old key")
	}
	rc.waitEveryoneOn(last.Version, live)
	// A figure, not a check: the three steps each wait for gossip to carry
	// every member's new version.
	t.Logf("rotation after the node removal: every live member on the new key alone after %v", time.Since(removed).Round(time.Millisecond))
	cancel()
	for batch := range events {
		for _, ev := range batch {
			if ev.Node != nil && ev.Node.ID != goneID && ev.Node.Status != api.NodeReady {
				t.Errorf("node %s went %s during the rotation (%s)", ev.Node.ID, ev.Node.Status, ev.Node.StatusMessage)
			}
		}
	}
	// The removed node's keys no longer get into gossip; the new ones do.
	for _, keys := range [][][]byte{first.Raw(), last.Raw()} {
		m, err := membership.Start(t.Context(), membership.Config{
			NodeName: goneID, BindAddr: "127.0.0.1:0", Join: []string{rc.c.GossipAddr(l)}, Keys: keys,
			Meta: membership.Meta{NodeID: goneID, Hostname: "gone", Role: api.RoleWorker},
		})
		if err == nil {
			m.Close()
		}
		old := bytes.Equal(keys[0], first.Keys[0].Key)
		if old && !errors.Is(err, membership.ErrJoin) {
			t.Fatalf("join with the removed node's keys = %v, want ErrJoin", err)
		}
		if !old && err != nil {
			t.Fatalf("join with the current keys: %v", err)
		}
	}
}
