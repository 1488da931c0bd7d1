package raftstore

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore/commandpb"
)

// everyCommand has one command of each type, with most fields set.
func everyCommand() []Command {
	web := testService("svc-web", "web", 3)
	web.Spec.Healthcheck = &api.Healthcheck{Test: []string{"CMD", "true"}, Interval: api.Duration(1e9)}
	task := testTask("t1", web, 1)
	task.Status = api.TaskStatus{State: api.TaskRunning, Message: "up", ContainerID: "c1", ExitCode: 3, Timestamp: t0}
	return []Command{
		CreateService{Service: web},
		UpdateService{ID: "svc-web", Spec: web.Spec, ExpectedVersion: 2, At: t0},
		RemoveService{ID: "svc-web", At: t0},
		UpsertNode{Node: testNode("n1", api.NodeReady, api.AvailabilityActive)},
		UpdateNode{ID: "n1", Availability: api.AvailabilityDrain, LabelAdd: map[string]string{"a": "b"}, LabelRm: []string{"c"}, ExpectedVersion: 1, At: t0},
		SetNodeStatus{ID: "n1", Status: api.NodeDown, Message: "dead", At: t0},
		SetNodeStatus{ID: "n1", Status: api.NodeRestarting, Message: "back soon", RestartDeadline: t0.Add(30e9), ExpectedVersion: 4, At: t0},
		RemoveNode{ID: "n1", At: t0},
		WriteTasks{Create: []*api.Task{task}, Update: []*api.Task{task}, Delete: []string{"t0"}, At: t0},
		AssignTasks{Assignments: []Assignment{{"t1", "n1"}}, Pending: []PendingReason{{"t2", "full"}}, At: t0},
		UpdateTaskStatus{NodeID: "n1", Updates: []TaskStatusUpdate{{"t1", task.Status}}, At: t0},
		SetCluster{Cluster: api.ClusterInfo{ID: "c1", CreatedAt: t0}},
		UpsertManager{Manager: api.Manager{ID: "m1", RaftAddr: "127.0.0.1:1", Addr: "127.0.0.1:2", GossipAddr: "127.0.0.1:3"}},
		RemoveManager{ID: "m1"},
		Batch{Commands: []Command{RemoveManager{ID: "m1"}, Batch{Commands: []Command{SetCluster{Cluster: api.ClusterInfo{ID: "c"}}}}}},
		Request{ID: "req-1", Command: UpdateService{ID: "svc-web", Spec: web.Spec, At: t0}},
		Batch{Commands: []Command{Request{ID: "req-2", Command: RemoveManager{ID: "m1"}}, RemoveManager{ID: "m2"}}},
		SetUpdateStatus{ID: "svc-web", SpecVersion: 1, From: []api.UpdateState{api.UpdateCanary}, At: t0,
			Status: api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 1, StartedAt: t0, Message: "m", FirstVersion: 1}},
		RollbackService{ID: "svc-web", ExpectedVersion: 2, ToVersion: 1, Config: &api.UpdateConfig{Parallelism: 2, MaxFailureRatio: 0.5}, Message: "m", At: t0},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, cmd := range everyCommand() {
		t.Run(reflect.TypeOf(cmd).Name(), func(t *testing.T) {
			b, err := EncodeCommand(cmd)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, cmd) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, cmd)
			}
			// A pointer to a command encodes the same.
			ptr := reflect.New(reflect.TypeOf(cmd))
			ptr.Elem().Set(reflect.ValueOf(cmd))
			pb, err := EncodeCommand(ptr.Interface().(Command))
			if err != nil || string(pb) != string(b) {
				t.Errorf("pointer encodes differently (err %v)", err)
			}
		})
	}
}

func TestCodecErrors(t *testing.T) {
	deep := Command(RemoveManager{ID: "m"})
	for range maxBatchDepth + 1 {
		deep = Batch{Commands: []Command{deep}}
	}
	for _, tc := range []struct {
		name string
		cmd  Command
	}{
		{"nil", nil},
		{"nil pointer", (*CreateService)(nil)},
		{"too deep", deep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := EncodeCommand(tc.cmd); err == nil {
				t.Error("encode succeeded")
			}
		})
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"not protobuf", []byte{0xff, 0xff, 0xff}},
		{"unknown type", []byte{0x08, 0x63, 0x10, 0x01}},
		{"no encoding", []byte{0x08, 0x01}},
		{"bad json", []byte{0x08, 0x01, 0x10, 0x01, 0x1a, 0x01, '{'}},
		{"bad task state", mustEncodeRaw(t, CmdUpdateTaskStatus, `{"Updates":[{"TaskID":"x","Status":{"state":"dancing"}}]}`)},
		{"request id on a batch", mustMarshal(t, &commandpb.Envelope{Type: commandpb.CommandType_BATCH, RequestId: "r"})},
		{"request id too long", mustMarshal(t, &commandpb.Envelope{
			Type: commandpb.CommandType_REMOVE_MANAGER, Encoding: commandpb.Encoding_ENCODING_JSON,
			Payload: []byte(`{"ID":"m"}`), RequestId: strings.Repeat("r", MaxRequestIDLength+1),
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if cmd, err := DecodeCommand(tc.data); err == nil {
				t.Errorf("decoded %#v", cmd)
			}
		})
	}
}

func mustMarshal(t testing.TB, env *commandpb.Envelope) []byte {
	t.Helper()
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEncodeRaw(t testing.TB, typ CommandType, payload string) []byte {
	t.Helper()
	b := []byte{0x08, byte(typ), 0x10, 0x01, 0x1a, byte(len(payload))}
	return append(b, payload...)
}

// FuzzDecodeCommand: any bytes either fail to decode or give a command
// that encodes again and applies without a panic.
func FuzzDecodeCommand(f *testing.F) {
	for _, cmd := range everyCommand() {
		b, err := EncodeCommand(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := DecodeCommand(data)
		if err != nil {
			return
		}
		again, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", cmd, err)
		}
		if _, err := DecodeCommand(again); err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		s := fixture(t)
		s.apply(0, cmd) //nolint:errcheck // rejections are fine, panics are not
	})
}
