package dispatcher_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// spyAgent is a hand-driven session that keeps every message the leader
// sends it, answering nothing but heartbeats.
type spyAgent struct {
	mu   sync.Mutex
	msgs []*shoalpb.ManagerMessage
}

func startSpy(t *testing.T, s *single, id string) *spyAgent {
	t.Helper()
	stream := sessionClient(t, s.addr)
	if err := stream.Send(helloMsg(id)); err != nil {
		t.Fatal(err)
	}
	spy := &spyAgent{}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); stream.CloseSend(); wg.Wait() })
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			spy.mu.Lock()
			spy.msgs = append(spy.msgs, m)
			spy.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if stream.Send(&shoalpb.AgentMessage{Msg: &shoalpb.AgentMessage_Heartbeat{Heartbeat: &shoalpb.Heartbeat{}}}) != nil {
					return
				}
			}
		}
	}()
	return spy
}

// seen reports how many tasks were upserted to the spy, and whether any
// message it got holds needle.
func (spy *spyAgent) seen(t *testing.T, needle []byte) (upserts int, leaked bool) {
	spy.mu.Lock()
	defer spy.mu.Unlock()
	for _, m := range spy.msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		leaked = leaked || bytes.Contains(b, needle)
		upserts += len(m.GetAssignments().GetUpsert())
		if len(m.GetAssignments().GetSecrets()) > 0 || len(m.GetAssignments().GetRegistryAuths()) > 0 {
			leaked = true
		}
	}
	return upserts, leaked
}

// TestSecretsGoOnlyToTheirTasksNodes runs a service that uses a secret, a
// config and a registry credential on one agent, and another service on
// the other agents: the first agent's runtime gets the files and the
// credential; an agent without such a task (a real one, and a session
// driven by hand that keeps every byte it is sent) never gets them.
func TestSecretsGoOnlyToTheirTasksNodes(t *testing.T) {
	s := newSingle(t, testGrace)
	agents := addReadyAgents(t, s, 2)
	spy := startSpy(t, s, "spy")
	waitNode(t, s, "spy", api.NodeReady)
	s.startOrchestrator()
	ctx := t.Context()
	const value = "s3cret-value-7f1c"
	for _, c := range []raftstore.Command{
		raftstore.CreateSecret{Secret: &api.Secret{ID: "sec1", Kind: api.KindSecret, Spec: api.SecretSpec{Name: "db_password", Data: []byte(value)}}},
		raftstore.CreateSecret{Secret: &api.Secret{ID: "cfg1", Kind: api.KindConfig, Spec: api.SecretSpec{Name: "app_conf", Data: []byte("k=v")}}},
	} {
		if _, err := s.apply.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	auth := &api.RegistryAuth{Registry: "reg.example:5000", Username: "u", Password: "registry-pass-91"}
	mk := func(name string, constraint string, withSecrets bool) {
		spec := api.ServiceSpec{Name: name, Image: "img", Mode: api.ModeReplicated, Replicas: 1,
			StopGracePeriod: api.Duration(100 * time.Millisecond), Placement: api.Placement{Constraints: []string{constraint}}}
		svc := &api.Service{ID: "svc-" + name, Spec: spec, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if withSecrets {
			svc.Spec.Secrets = []api.SecretReference{{SecretID: "sec1", SecretName: "db_password", UID: 70, GID: 71, Mode: 0o400}}
			svc.Spec.Configs = []api.SecretReference{{SecretID: "cfg1", SecretName: "app_conf", Target: "/etc/app.conf"}}
			svc.RegistryAuth = auth
		} else {
			svc.Spec.Replicas, svc.Spec.Placement.MaxReplicasPerNode = 2, 1
		}
		if _, err := s.apply.Apply(ctx, raftstore.CreateService{Service: svc}); err != nil {
			t.Fatal(err)
		}
	}
	mk("db", "node.hostname=="+agents[0].name, true)
	mk("other", "node.hostname!="+agents[0].name, false)
	waitRunning(t, s, "svc-db", 1)

	var dbTask *api.Task
	managertest.WaitFor(t, 5*time.Second, func() error {
		for _, tk := range s.state.Read().TasksByService("svc-db") {
			if agents[0].rt.Task(tk.ID) != nil {
				dbTask = tk
				return nil
			}
		}
		return fmt.Errorf("the db task has no container on %s", agents[0].name)
	})
	want := []api.SecretFile{
		{Path: "/run/secrets/db_password", UID: 70, GID: 71, Mode: 0o400, Data: []byte(value)},
		{Path: "/etc/app.conf", Mode: 0o444, Data: []byte("k=v")},
	}
	if got := agents[0].rt.Secrets(dbTask.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files of the db task = %+v, want %+v", got, want)
	}
	if got := agents[0].rt.PullAuth("img"); got == nil || *got != *auth {
		t.Errorf("pull credential on %s = %+v, want %+v", agents[0].name, got, auth)
	}
	// The other agents run the other service and nothing of the first.
	managertest.WaitFor(t, 5*time.Second, func() error {
		if n := len(agents[1].rt.Running()); n != 1 {
			return fmt.Errorf("%s runs %d containers, want the other service's one", agents[1].name, n)
		}
		if n, _ := spy.seen(t, nil); n == 0 {
			return fmt.Errorf("the spy was sent no task")
		}
		return nil
	})
	for _, id := range agents[1].rt.Running() {
		if f := agents[1].rt.Secrets(id); f != nil {
			t.Errorf("%s: task %s got files %+v", agents[1].name, id, f)
		}
	}
	if a := agents[1].rt.PullAuth("img"); a != nil {
		t.Errorf("%s pulled with the db service's credential %+v", agents[1].name, a)
	}
	for _, needle := range []string{value, auth.Password} {
		if _, leaked := spy.seen(t, []byte(needle)); leaked {
			t.Errorf("the spy session was sent %q (or other secret data)", needle)
		}
	}
}
