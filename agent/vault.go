package agent

import (
	"fmt"
	"sync"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// vault holds, in memory only, the secrets and configs the leader sent for
// this agent's tasks and their services' registry credentials. Nothing of
// it is written to the data dir: a restarted agent gets it again with the
// first full assignment set of its new session.
type vault struct {
	mu      sync.Mutex
	secrets map[string][]byte // kind/id -> data
	auths   map[string]*api.RegistryAuth
}

func newVault() *vault {
	return &vault{secrets: map[string][]byte{}, auths: map[string]*api.RegistryAuth{}}
}

func vaultKey(kind, id string) string { return kind + "/" + id }

// put takes what an assignment message carries; a full set replaces all of
// it (what the node's tasks no longer use goes with the old set).
func (v *vault) put(m *shoalpb.Assignments) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m.GetFull() {
		clear(v.secrets)
		clear(v.auths)
	}
	for _, s := range m.GetSecrets() {
		v.secrets[vaultKey(s.GetKind(), s.GetId())] = s.GetData()
	}
	for _, a := range m.GetRegistryAuths() {
		v.auths[a.GetServiceId()] = shoalpb.ToRegistryAuth(a.GetAuth())
	}
}

// keep forgets what none of tasks uses.
func (v *vault) keep(tasks map[string]*api.Task) {
	used, services := map[string]bool{}, map[string]bool{}
	for _, t := range tasks {
		services[t.ServiceID] = true
		for _, kind := range []string{api.KindSecret, api.KindConfig} {
			for _, id := range api.SecretIDs(t.RunSpec(), kind) {
				used[vaultKey(kind, id)] = true
			}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for k := range v.secrets {
		if !used[k] {
			delete(v.secrets, k)
		}
	}
	for id := range v.auths {
		if !services[id] {
			delete(v.auths, id)
		}
	}
}

// files resolves the task's secrets and configs into the files its
// container gets; a secret the leader did not send is an error naming it.
func (v *vault) files(t *api.Task) ([]api.SecretFile, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []api.SecretFile
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		refs := t.RunSpec().Secrets
		if kind == api.KindConfig {
			refs = t.RunSpec().Configs
		}
		for _, r := range refs {
			data, ok := v.secrets[vaultKey(kind, r.SecretID)]
			if !ok {
				return nil, fmt.Errorf("%s %q (id %s) was not delivered to this node", kind, r.SecretName, r.SecretID)
			}
			out = append(out, api.SecretFile{Path: r.FilePath(kind), UID: r.UID, GID: r.GID, Mode: r.FileMode(), Data: data})
		}
	}
	return out, nil
}

// auth is the registry credential of the task's service, or nil.
func (v *vault) auth(serviceID string) *api.RegistryAuth {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.auths[serviceID]
}
