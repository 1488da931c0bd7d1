package dispatcher

import (
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// taskExtras gathers what the tasks of one assignment message need beyond
// their specs: the secrets and configs they use and their services'
// registry credentials. It is built from the tasks sent to this node only,
// so no agent is ever sent data its tasks do not use.
type taskExtras struct {
	seen    map[string]bool // kind/id of the secrets added, and service ids of the auths
	secrets []*shoalpb.SecretData
	auths   []*shoalpb.ServiceRegistryAuth
}

func (x *taskExtras) add(v *raftstore.View, t *api.Task, spec *api.ServiceSpec) {
	if spec == nil {
		return
	}
	if x.seen == nil {
		x.seen = map[string]bool{}
	}
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		for _, id := range api.SecretIDs(spec, kind) {
			key := kind + "/" + id
			if x.seen[key] {
				continue
			}
			x.seen[key] = true
			// A secret removed since the task's spec was written is left
			// out: the agent then refuses the task, naming it.
			if s := v.Secret(kind, id); s != nil {
				x.secrets = append(x.secrets, &shoalpb.SecretData{Id: s.ID, Kind: s.Kind, Name: s.Spec.Name, Data: s.Spec.Data})
			}
		}
	}
	if x.seen["service/"+t.ServiceID] {
		return
	}
	x.seen["service/"+t.ServiceID] = true
	if svc := v.Service(t.ServiceID); svc != nil && svc.RegistryAuth != nil {
		x.auths = append(x.auths, &shoalpb.ServiceRegistryAuth{ServiceId: svc.ID, Auth: shoalpb.FromRegistryAuth(svc.RegistryAuth)})
	}
}
