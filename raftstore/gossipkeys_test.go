package raftstore

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func gkey(b byte) api.GossipKey {
	return api.GossipKey{Key: bytes.Repeat([]byte{b}, api.GossipKeySize), CreatedAt: t0}
}

func TestSetGossipKeysVersionsAndRefusals(t *testing.T) {
	s := fixture(t)
	if _, ok := s.Read().GossipKeyring(); ok {
		t.Fatal("a new state has a gossip keyring")
	}
	if _, _, err := s.apply(0, SetGossipKeys{Keys: []api.GossipKey{gkey(1)}, At: t0}); err != nil {
		t.Fatal(err)
	}
	ring, ok := s.Read().GossipKeyring()
	if !ok || ring.Version != 1 || len(ring.Keys) != 1 || !bytes.Equal(ring.Primary().Key, gkey(1).Key) {
		t.Fatalf("keyring after bootstrap = %+v", ring)
	}
	before := dump(t, s.Read())
	for name, c := range map[string]SetGossipKeys{
		"stale version":  {Keys: []api.GossipKey{gkey(2)}, ExpectedVersion: 0},
		"no key":         {ExpectedVersion: 1},
		"short key":      {Keys: []api.GossipKey{{Key: []byte("short")}}, ExpectedVersion: 1},
		"same key twice": {Keys: []api.GossipKey{gkey(1), gkey(1)}, ExpectedVersion: 1},
		"too many":       {Keys: []api.GossipKey{gkey(1), gkey(2), gkey(3), gkey(4)}, ExpectedVersion: 1},
	} {
		_, _, err := s.apply(0, c)
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrConflict) {
			t.Errorf("%s: err = %v, want ErrInvalid or ErrConflict", name, err)
		}
		if bytes.Contains([]byte(err.Error()), gkey(1).Key) {
			t.Errorf("%s: the error shows a key", name)
		}
	}
	if got, _ := s.Read().GossipKeyring(); got.Version != 1 || dump(t, s.Read()) != before {
		t.Fatalf("a refused command changed the state (version %d)", got.Version)
	}
	// Removing a node asks for a rotation; the step that adds a key
	// clears the request.
	if _, _, err := s.apply(0, RemoveNode{ID: "n2", At: t0}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Read().GossipKeyring(); !got.RotateRequested || got.Version != 1 {
		t.Fatalf("after a node removal: %+v, want a rotation requested at the same version", got)
	}
	if _, _, err := s.apply(0, SetGossipKeys{Keys: []api.GossipKey{gkey(1), gkey(2)}, ExpectedVersion: 1, ClearRotateRequest: true, At: t0}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Read().GossipKeyring(); got.RotateRequested || got.Version != 2 || len(got.Keys) != 2 {
		t.Fatalf("after adding the new key: %+v", got)
	}
	if _, _, err := s.apply(0, RemoveManager{ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Read().GossipKeyring(); !got.RotateRequested {
		t.Fatal("removing a manager did not ask for a rotation")
	}
}

func TestGossipKeyringSnapshotRoundTrip(t *testing.T) {
	src := &fsm{state: NewState()}
	cmds := []Command{
		SetGossipKeys{Keys: []api.GossipKey{gkey(1)}, At: t0},
		SetGossipKeys{Keys: []api.GossipKey{gkey(1), gkey(2)}, ExpectedVersion: 1, At: t0},
	}
	applyLog(t, src, append(manyCommands(3, 2), cmds...), 1)
	want, _ := src.state.Read().GossipKeyring()
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dst := &fsm{state: NewState()}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got, ok := dst.state.Read().GossipKeyring()
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("restored keyring = %+v, want %+v", got, want)
	}
	// The command survives the log encoding.
	data, err := EncodeCommand(cmds[1])
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCommand(data)
	if err != nil || !reflect.DeepEqual(back, cmds[1]) {
		t.Fatalf("decode = %+v, %v; want %+v", back, err, cmds[1])
	}
}

func TestSetAutolockVersionsAndSnapshot(t *testing.T) {
	src := &fsm{state: NewState()}
	key := bytes.Repeat([]byte{7}, api.UnlockKeySize)
	applyLog(t, src, []Command{SetAutolock{Enabled: true, UnlockKey: key, At: t0}}, 1)
	s := src.state
	for name, c := range map[string]SetAutolock{
		"stale":        {Enabled: false, ExpectedVersion: 0},
		"short key":    {Enabled: true, UnlockKey: []byte("k"), ExpectedVersion: 1},
		"key when off": {Enabled: false, UnlockKey: key, ExpectedVersion: 1},
	} {
		if _, _, err := s.apply(0, c); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want ErrInvalid or ErrConflict", name, err)
		}
	}
	if a := s.Read().Autolock(); !a.Enabled || a.Version != 1 || !bytes.Equal(a.UnlockKey, key) {
		t.Fatalf("autolock = %+v", a)
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	dst := &fsm{state: NewState()}
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := dst.state.Read().Autolock(); !reflect.DeepEqual(got, s.Read().Autolock()) {
		t.Fatalf("restored autolock = %+v", got)
	}
}
