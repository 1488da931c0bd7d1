package raftstore

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func testCA() api.ClusterCA {
	return api.ClusterCA{
		RootCert: []byte("-----BEGIN CERTIFICATE-----\nroot\n"), RootKey: []byte("-----BEGIN PRIVATE KEY-----\nkey\n"),
		WorkerSecret: "w0000000000000000000000001", ManagerSecret: "m0000000000000000000000001",
	}
}

func TestSetCA(t *testing.T) {
	s := NewState()
	if _, ok := s.Read().CA(); ok {
		t.Fatal("a new state has a CA")
	}
	ca := testCA()
	if _, _, err := s.apply(0, SetCA{CA: ca, At: t0}); err != nil {
		t.Fatalf("install: %v", err)
	}
	got, ok := s.Read().CA()
	if !ok || got.Version != 1 || got.WorkerSecret != ca.WorkerSecret || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("after install: %+v, %v", got, ok)
	}
	rotated := got.Clone()
	rotated.RetiredSecrets = append(rotated.RetiredSecrets, rotated.WorkerSecret)
	rotated.WorkerSecret = "w0000000000000000000000002"
	cases := []struct {
		name string
		cmd  SetCA
		want error
	}{
		{"second install", SetCA{CA: ca}, ErrAlreadyExists},
		{"stale version", SetCA{CA: rotated, ExpectedVersion: 7}, ErrConflict},
		{"no key", SetCA{CA: api.ClusterCA{RootCert: ca.RootCert, WorkerSecret: "a", ManagerSecret: "b"}, ExpectedVersion: 1}, ErrInvalid},
		{"equal secrets", SetCA{CA: api.ClusterCA{RootCert: ca.RootCert, RootKey: ca.RootKey, WorkerSecret: "a", ManagerSecret: "a"}, ExpectedVersion: 1}, ErrInvalid},
		{"too many retired", SetCA{CA: func() api.ClusterCA {
			c := rotated.Clone()
			c.RetiredSecrets = make([]string, api.MaxRetiredSecrets+1)
			return c
		}(), ExpectedVersion: 1}, ErrInvalid},
		{"rotation without key", SetCA{CA: func() api.ClusterCA {
			c := rotated.Clone()
			c.Rotation = &api.CARotation{NewCert: []byte("x")}
			return c
		}(), ExpectedVersion: 1}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.apply(0, tc.cmd); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if now, _ := s.Read().CA(); now.Version != 1 {
				t.Fatalf("a refused change moved the version to %d", now.Version)
			}
		})
	}
	if _, _, err := s.apply(0, SetCA{CA: rotated, ExpectedVersion: 1}); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if got, _ := s.Read().CA(); got.Version != 2 || got.WorkerSecret != rotated.WorkerSecret || len(got.RetiredSecrets) != 1 {
		t.Fatalf("after rotation: %+v", got)
	}
}

// TestCASnapshotRoundTrip: the CA, with a rotation in progress, survives
// snapshot and restore unchanged, and goes through the log codec.
func TestCASnapshotRoundTrip(t *testing.T) {
	ca := testCA()
	ca.RetiredSecrets = []string{"r1", "r2"}
	ca.Rotation = &api.CARotation{NewCert: []byte("new"), NewKey: []byte("newkey"), CrossSigned: []byte("cross"), StartedAt: t0}
	src := &fsm{state: NewState()}
	applyLog(t, src, []Command{SetCluster{Cluster: api.ClusterInfo{ID: "c1", CreatedAt: t0}}, SetCA{CA: ca, At: t0}}, 1)
	want, _ := src.state.Read().CA()
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
		t.Fatalf("restore: %v", err)
	}
	got, ok := dst.state.Read().CA()
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("restored CA:\n got %+v\nwant %+v", got, want)
	}
	b, err := EncodeCommand(SetCA{CA: ca, ExpectedVersion: 3})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := dec.(SetCA); !ok || c.ExpectedVersion != 3 || !reflect.DeepEqual(c.CA, ca) {
		t.Fatalf("decoded %#v", dec)
	}
}
