package manager

import (
	"bytes"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/api"
)

func TestNextGossipKeysWalksARotation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	gen := func() ([]byte, error) { return newKey, nil }
	ring := api.GossipKeyring{Version: 1, Keys: []api.GossipKey{{Key: oldKey, Index: 1, CreatedAt: t0}}}
	if next, _, _ := nextGossipKeys(ring, time.Hour, t0.Add(59*time.Minute), gen); next != nil {
		t.Fatalf("a rotation before the interval: %+v", next)
	}
	steps := []struct {
		at        time.Time
		requested bool
		want      [][]byte
		adds      bool
	}{
		{t0.Add(time.Hour), false, [][]byte{oldKey, newKey}, true},
		{t0.Add(time.Hour), false, [][]byte{newKey, oldKey}, false},
		{t0.Add(time.Hour), false, [][]byte{newKey}, false},
	}
	for i, st := range steps {
		next, adds, err := nextGossipKeys(ring, time.Hour, st.at, gen)
		if err != nil || adds != st.adds || len(next) != len(st.want) {
			t.Fatalf("step %d: %d keys, adds %v, err %v; want %d keys, adds %v", i+1, len(next), adds, err, len(st.want), st.adds)
		}
		for j := range next {
			if !bytes.Equal(next[j].Key, st.want[j]) {
				t.Fatalf("step %d: key %d is not the one expected", i+1, j)
			}
		}
		ring = api.GossipKeyring{Version: ring.Version + 1, Keys: next}
	}
	if ring.Keys[0].Index != 2 || !ring.Keys[0].CreatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the new key was made at index %d, %v", ring.Keys[0].Index, ring.Keys[0].CreatedAt)
	}
	// Done: the new key is young, nothing is due...
	if next, _, _ := nextGossipKeys(ring, time.Hour, t0.Add(90*time.Minute), gen); next != nil {
		t.Fatalf("a rotation right after one: %+v", next)
	}
	// ...unless a node was removed.
	ring.RotateRequested = true
	if next, adds, _ := nextGossipKeys(ring, time.Hour, t0.Add(90*time.Minute), gen); len(next) != 2 || !adds {
		t.Fatalf("a requested rotation did not add a key: %d keys", len(next))
	}
}

func TestRotationWaitsForLaggardsAWhileOnly(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ring := api.GossipKeyring{Version: 2, UpdatedAt: at}
	if !stillWaiting(ring, at.Add(keyStepPatience-time.Second)) {
		t.Fatal("a step gave up on lagging nodes before its patience ran out")
	}
	if stillWaiting(ring, at.Add(keyStepPatience)) {
		t.Fatal("a step waits for lagging nodes past its patience")
	}
}
