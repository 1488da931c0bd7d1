package controlapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

func secretReq(kind, name string, data []byte) func(context.Context, shoalpb.ControlClient) error {
	return func(ctx context.Context, cl shoalpb.ControlClient) error {
		_, err := cl.CreateSecret(ctx, &shoalpb.CreateSecretRequest{Kind: kind, Spec: &shoalpb.SecretSpec{Name: name, Data: data}})
		return err
	}
}

func secretCases() []netCase {
	inv := codes.InvalidArgument
	big := []byte(strings.Repeat("x", api.MaxSecretBytes+1))
	withRef := func(mod func(*shoalpb.ServiceSpec)) func(context.Context, shoalpb.ControlClient) error {
		return createSvc(mod)
	}
	return []netCase{
		{"over 500 KiB", secretReq(api.KindSecret, "big", big), inv, []string{"spec.data", "512001 bytes", "at most 512000 bytes"}},
		{"empty data", secretReq(api.KindConfig, "empty", nil), inv, []string{"spec.data", "0 bytes", "needs data"}},
		{"bad name", secretReq(api.KindSecret, "db password", []byte("x")), inv, []string{"spec.name", `"db password"`, "not allowed"}},
		{"bad kind", secretReq("volume", "x", []byte("x")), inv, []string{`kind "volume"`}},
		{"taken name", secretReq(api.KindSecret, "db_password", []byte("x")), codes.AlreadyExists, []string{`"db_password"`}},
		{"unknown secret in a spec", withRef(func(s *shoalpb.ServiceSpec) {
			s.Secrets = []*shoalpb.SecretReference{{SecretName: "nope"}}
		}), codes.NotFound, []string{"spec.secrets[0].source", `"nope"`, "secret create"}},
		{"a secret's name as a config", withRef(func(s *shoalpb.ServiceSpec) {
			s.Configs = []*shoalpb.SecretReference{{SecretName: "db_password"}}
		}), codes.NotFound, []string{"spec.configs[0].source", `"db_password"`}},
		{"bad mode", withRef(func(s *shoalpb.ServiceSpec) {
			s.Secrets = []*shoalpb.SecretReference{{SecretName: "db_password", Mode: 0o1777}}
		}), inv, []string{"spec.secrets[0].mode", "01777", "0777"}},
		{"relative config target", withRef(func(s *shoalpb.ServiceSpec) {
			s.Configs = []*shoalpb.SecretReference{{SecretName: "app_conf", Target: "etc/app.conf"}}
		}), inv, []string{"spec.configs[0].target", "absolute"}},
		{"two on one file", withRef(func(s *shoalpb.ServiceSpec) {
			s.Secrets = []*shoalpb.SecretReference{{SecretName: "db_password"}, {SecretName: "api_key", Target: "db_password"}}
		}), inv, []string{"spec.secrets[1].target", "/run/secrets/db_password"}},
		{"rm in use", func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RemoveSecret(ctx, &shoalpb.RemoveSecretRequest{Kind: api.KindSecret, Secret: "db_password"})
			return err
		}, codes.FailedPrecondition, []string{`secret "db_password" is in use by service "db"`}},
		{"rm unknown", func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RemoveSecret(ctx, &shoalpb.RemoveSecretRequest{Kind: api.KindConfig, Secret: "nope"})
			return err
		}, codes.NotFound, []string{`config "nope"`}},
		{"data is immutable", func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.UpdateSecret(ctx, &shoalpb.UpdateSecretRequest{Kind: api.KindSecret, Secret: "db_password",
				Spec: &shoalpb.SecretSpec{Data: []byte("rotated")}})
			return err
		}, inv, []string{"spec.data", "7 bytes", "cannot change"}},
		{"bad registry auth", func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: validSpec("new"), RegistryAuth: &shoalpb.RegistryAuth{Username: "u"}})
			return err
		}, inv, []string{"registry_auth.registry", "missing"}},
	}
}

// secretsFingerprint is what of the state a secrets request could change.
func secretsFingerprint(t *testing.T, v *raftstore.View) string {
	t.Helper()
	b, err := json.Marshal([]any{v.Secrets(api.KindSecret), v.Secrets(api.KindConfig), netFingerprint(v)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSecretBadRequests sends each bad secret or config request through
// gRPC to a real manager: an error naming the field, the value and the
// limit, and nothing changes. Then what is shown: never a secret's data
// (nor a service's registry credential), a config's only by inspect.
func TestSecretBadRequests(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(0)
	ctx := t.Context()
	const value = "pg-9d8e7f"
	for _, r := range []*shoalpb.CreateSecretRequest{
		{Kind: api.KindSecret, Spec: &shoalpb.SecretSpec{Name: "db_password", Data: []byte(value), Labels: map[string]string{"a": "b"}}},
		{Kind: api.KindSecret, Spec: &shoalpb.SecretSpec{Name: "api_key", Data: []byte("k")}},
		{Kind: api.KindConfig, Spec: &shoalpb.SecretSpec{Name: "app_conf", Data: []byte("level=debug")}},
	} {
		if _, err := cl.CreateSecret(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	db := validSpec("db")
	db.Secrets = []*shoalpb.SecretReference{{SecretName: "db_password", Uid: 70, Mode: 0o400}}
	db.Configs = []*shoalpb.SecretReference{{SecretName: "app_conf", Target: "/etc/app.conf"}}
	if _, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: db,
		RegistryAuth: &shoalpb.RegistryAuth{Registry: "reg:5000", Username: "u", Password: "registry-pw-31"}}); err != nil {
		t.Fatalf("create db: %v", err)
	}
	node := c.Manager(0).Raft()
	for _, tc := range secretCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := secretsFingerprint(t, node.State().Read())
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			wantCode(t, tc.call(ctx, cl), tc.code, tc.parts...)
			if got := secretsFingerprint(t, node.State().Read()); got != before {
				t.Fatalf("state changed:\nfrom %s\nto   %s", before, got)
			}
		})
	}
	checkShown(t, cl, value, "registry-pw-31")
}

// checkShown reads everything a client can read of secrets, services and
// tasks: none of it holds the secret's value or the registry password.
func checkShown(t *testing.T, cl shoalpb.ControlClient, needles ...string) {
	t.Helper()
	ctx := t.Context()
	sec, err := cl.GetSecret(ctx, &shoalpb.GetSecretRequest{Kind: api.KindSecret, Secret: "db_password"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.GetSpec().GetLabels()["a"] != "b" || sec.GetSpec().GetData() != nil {
		t.Errorf("secret inspect = %v, want its labels and no data", sec)
	}
	cfg, err := cl.GetSecret(ctx, &shoalpb.GetSecretRequest{Kind: api.KindConfig, Secret: "app_conf"})
	if err != nil || string(cfg.GetSpec().GetData()) != "level=debug" {
		t.Errorf("config inspect = %v, %v; want its data", cfg, err)
	}
	ls, err := cl.ListSecrets(ctx, &shoalpb.ListSecretsRequest{Kind: api.KindSecret})
	if err != nil || len(ls.GetSecrets()) != 2 {
		t.Fatalf("secret ls = %v, %v", ls, err)
	}
	svc, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if r := svc.GetSpec().GetSecrets(); len(r) != 1 || r[0].GetSecretId() != sec.GetId() || r[0].GetUid() != 70 {
		t.Errorf("service secrets = %v, want db_password resolved to %s", r, sec.GetId())
	}
	tasks, err := cl.ListTasks(ctx, &shoalpb.ListTasksRequest{Service: "db"})
	if err != nil {
		t.Fatal(err)
	}
	services, err := cl.ListServices(ctx, &shoalpb.ListServicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	for _, m := range []proto.Message{sec, ls, svc, tasks, services} {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		shown.Write(b)
	}
	for _, n := range needles {
		if strings.Contains(shown.String(), n) {
			t.Errorf("%q is shown by inspect or ls", n)
		}
	}
}
