package agent_test

import (
	"testing"

	"github.com/shoal-sched/shoal/agent"
	"github.com/shoal-sched/shoal/agent/fake"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/authz"
)

// TestEveryAgentMethodIsAuthorized: every method of the Agent service has
// an entry in the authorisation table.
func TestEveryAgentMethodIsAuthorized(t *testing.T) {
	a, err := agent.New(agent.Config{
		DataDir: t.TempDir(), Join: []string{"127.0.0.1:1"}, AdvertiseAddr: "127.0.0.1:0", Hostname: "h",
		Runtime: fake.New(), Resources: api.Resources{NanoCPUs: 1e9, MemoryBytes: 1 << 30}, Plaintext: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	info := agent.ServiceInfo(a)
	if _, ok := info["shoal.v1.Agent"]; !ok {
		t.Fatalf("the agent serves %v, not shoal.v1.Agent", info)
	}
	if missing := authz.Missing(info); len(missing) > 0 {
		t.Fatalf("methods without an authorisation entry: %v", missing)
	}
}
