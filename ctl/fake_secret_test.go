package ctl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// newFakeSecretControl is the fake Control server holding a secret and a
// config, with service web using the secret.
func newFakeSecretControl() *fakeControl {
	f := newFakeControl()
	created := timestamppb.New(testNow.Add(-3 * 24 * time.Hour))
	updated := timestamppb.New(testNow.Add(-2 * time.Hour))
	f.secrets = []*shoalpb.Secret{
		{Id: "sec1dbpassword00000000000", Kind: api.KindSecret, Version: 2, CreatedAt: created, UpdatedAt: updated,
			Spec: &shoalpb.SecretSpec{Name: "db_password", Labels: map[string]string{"env": "prod"}, Data: []byte("pg-s3cret")}},
		{Id: "cfg1appconf0000000000000", Kind: api.KindConfig, Version: 1, CreatedAt: created, UpdatedAt: created,
			Spec: &shoalpb.SecretSpec{Name: "app_conf", Data: []byte("level=debug\n")}},
	}
	f.services[0].Spec.Secrets = []*shoalpb.SecretReference{{SecretId: "sec1dbpassword00000000000", SecretName: "db_password", Mode: 0o400}}
	return f
}

func (f *fakeControl) findSecret(kind, ref string) (*shoalpb.Secret, error) {
	for _, s := range f.secrets {
		if s.GetKind() == kind && (s.GetSpec().GetName() == ref || strings.HasPrefix(s.GetId(), ref)) {
			return s, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "%s %q: not found", kind, ref)
}

// shown is a secret as the manager answers it: a secret without its data.
func shown(s *shoalpb.Secret) *shoalpb.Secret {
	c := proto.Clone(s).(*shoalpb.Secret)
	if c.GetKind() == api.KindSecret {
		c.Spec.Data = nil
	}
	return c
}

func (f *fakeControl) CreateSecret(_ context.Context, req *shoalpb.CreateSecretRequest) (*shoalpb.SecretWriteResponse, error) {
	return handle(f, req, func() (*shoalpb.SecretWriteResponse, error) {
		if _, err := f.findSecret(req.GetKind(), req.GetSpec().GetName()); err == nil {
			return nil, status.Errorf(codes.AlreadyExists, "%s %q: already exists", req.GetKind(), req.GetSpec().GetName())
		}
		s := &shoalpb.Secret{Id: "new" + req.GetSpec().GetName() + "0000000000", Kind: req.GetKind(), Spec: req.GetSpec(), Version: 1}
		f.secrets = append(f.secrets, s)
		return &shoalpb.SecretWriteResponse{Secret: shown(s), Index: 12}, nil
	})
}

func (f *fakeControl) ListSecrets(_ context.Context, req *shoalpb.ListSecretsRequest) (*shoalpb.ListSecretsResponse, error) {
	return handle(f, req, func() (*shoalpb.ListSecretsResponse, error) {
		out := &shoalpb.ListSecretsResponse{}
		for _, s := range f.secrets {
			if s.GetKind() == req.GetKind() {
				c := shown(s)
				c.Spec.Data = nil
				out.Secrets = append(out.Secrets, c)
			}
		}
		return out, nil
	})
}

func (f *fakeControl) GetSecret(_ context.Context, req *shoalpb.GetSecretRequest) (*shoalpb.Secret, error) {
	return handle(f, req, func() (*shoalpb.Secret, error) {
		s, err := f.findSecret(req.GetKind(), req.GetSecret())
		if err != nil {
			return nil, err
		}
		return shown(s), nil
	})
}

func (f *fakeControl) RemoveSecret(_ context.Context, req *shoalpb.RemoveSecretRequest) (*shoalpb.RemoveSecretResponse, error) {
	return handle(f, req, func() (*shoalpb.RemoveSecretResponse, error) {
		s, err := f.findSecret(req.GetKind(), req.GetSecret())
		if err != nil {
			return nil, err
		}
		for _, svc := range f.services {
			for _, r := range svc.GetSpec().GetSecrets() {
				if r.GetSecretId() == s.GetId() {
					return nil, status.Errorf(codes.FailedPrecondition, "%s %q is in use by service %q", s.GetKind(), s.GetSpec().GetName(), svc.GetSpec().GetName())
				}
			}
		}
		f.secrets = slices.DeleteFunc(f.secrets, func(o *shoalpb.Secret) bool { return o == s })
		return &shoalpb.RemoveSecretResponse{Index: 13}, nil
	})
}

func TestSecretGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"secret_ls", []string{"secret", "ls"}},
		{"secret_ls_format", []string{"secret", "ls", "--format", "{{.Name}} {{.Updated}}"}},
		{"config_ls", []string{"config", "ls"}},
		{"secret_inspect", []string{"secret", "inspect", "db_password"}},
		{"secret_inspect_pretty", []string{"secret", "inspect", "--pretty", "db_password"}},
		{"config_inspect_pretty", []string{"config", "inspect", "--pretty", "app_conf"}},
		{"secret_rm", []string{"secret", "rm", "db_password", "app_conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := serveTCP(t, newFakeSecretControl())
			r := runCLI(t, host, tt.args...)
			out := r.stdout
			if r.stderr != "" {
				out += "--- stderr\n" + r.stderr
			}
			if strings.Contains(out, "pg-s3cret") {
				t.Errorf("the output shows the secret's data:\n%s", out)
			}
			checkGolden(t, tt.name, out)
		})
	}
}

func TestSecretCommandsSend(t *testing.T) {
	f := newFakeSecretControl()
	host := serveTCP(t, f)
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte("k3y"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, host, "secret", "create", "--label", "a=b", "api_key", file); out != "newapi_key0000000000\n" {
		t.Errorf("secret create printed %q, want the ID", out)
	}
	got := sent[*shoalpb.CreateSecretRequest](f)[0]
	if got.GetKind() != api.KindSecret || got.GetSpec().GetName() != "api_key" || string(got.GetSpec().GetData()) != "k3y" || got.GetSpec().GetLabels()["a"] != "b" {
		t.Errorf("secret create sent %v", got)
	}
	mustRun(t, host, "service", "create", "-d", "--name", "db", "--secret", "db_password",
		"--secret", "source=api_key,target=key,uid=70,gid=71,mode=0400", "--config", "source=app_conf,target=/etc/app.conf", "busybox")
	spec := shoalpb.ToServiceSpec(sent[*shoalpb.CreateServiceRequest](f)[0].GetSpec())
	wantSecrets := []api.SecretReference{{SecretName: "db_password"}, {SecretName: "api_key", Target: "key", UID: 70, GID: 71, Mode: 0o400}}
	if !reflect.DeepEqual(spec.Secrets, wantSecrets) || !reflect.DeepEqual(spec.Configs, []api.SecretReference{{SecretName: "app_conf", Target: "/etc/app.conf"}}) {
		t.Errorf("create sent secrets %+v configs %+v", spec.Secrets, spec.Configs)
	}
	mustRun(t, host, "service", "update", "-d", "--secret-rm", "db_password", "--secret-add", "db_password_v2", "--config-add", "app_conf", "web")
	up := shoalpb.ToServiceSpec(sent[*shoalpb.UpdateServiceRequest](f)[0].GetSpec())
	if !reflect.DeepEqual(up.Secrets, []api.SecretReference{{SecretName: "db_password_v2"}}) || !reflect.DeepEqual(up.Configs, []api.SecretReference{{SecretName: "app_conf"}}) {
		t.Errorf("update sent secrets %+v configs %+v", up.Secrets, up.Configs)
	}
}

func TestSecretFlagErrors(t *testing.T) {
	host := serveTCP(t, newFakeSecretControl())
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, api.MaxSecretBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"secret", "create", "x", big}, []string{"FILE", "512001 bytes", "at most 512000"}},
		{[]string{"secret", "create", "bad name", big}, []string{"NAME", `"bad name"`}},
		{[]string{"secret", "create", "x"}, []string{"NAME FILE|-"}},
		{[]string{"config", "create", "x", "/nonexistent/file"}, []string{"config file", "/nonexistent/file"}},
		{[]string{"secret", "rm", "db_password"}, []string{`in use by service "web"`}},
		{[]string{"service", "create", "--name", "a", "--secret", "source=x,mode=999", "busybox"}, []string{"--secret", "mode", "999"}},
		{[]string{"service", "create", "--name", "a", "--secret", "target=x", "busybox"}, []string{"--secret", "no source"}},
		{[]string{"service", "create", "--name", "a", "--config", "source=c,target=rel", "busybox"}, []string{"--config", "absolute"}},
		{[]string{"service", "create", "--name", "a", "--with-registry-auth", "reg:5000/app", "busybox"}, []string{"--with-registry-auth", `registry "reg:5000"`}},
	}
	for _, c := range cases {
		mustFail(t, host, c.args, c.want...)
	}
}

// TestWithRegistryAuth: the login of the image's registry, read from the
// docker config, goes with the create request.
func TestWithRegistryAuth(t *testing.T) {
	f := newFakeSecretControl()
	host := serveTCP(t, f)
	dir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
		"reg.example:5000":            map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("deploy:pw-1"))},
		"https://index.docker.io/v1/": map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("hub:pw-2"))},
	}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ image, registry, user string }{
		{"reg.example:5000/team/app:1", "reg.example:5000", "deploy"},
		{"busybox", "docker.io", "hub"},
	} {
		app, _, errOut := testApp(host)
		getenv := app.Getenv
		app.Getenv = func(k string) string {
			if k == "DOCKER_CONFIG" {
				return dir
			}
			return getenv(k)
		}
		if code := Execute(t.Context(), app, []string{"service", "create", "-d", "--with-registry-auth", "--name", fmt.Sprintf("s%d", i), tc.image}); code != 0 {
			t.Fatalf("create %s: exit %d: %s", tc.image, code, errOut)
		}
		a := sent[*shoalpb.CreateServiceRequest](f)[i].GetRegistryAuth()
		if a.GetRegistry() != tc.registry || a.GetUsername() != tc.user {
			t.Errorf("create %s sent auth %v, want %s@%s", tc.image, a, tc.user, tc.registry)
		}
	}
}

func (f *fakeControl) UpdateSecret(_ context.Context, req *shoalpb.UpdateSecretRequest) (*shoalpb.SecretWriteResponse, error) {
	return handle(f, req, func() (*shoalpb.SecretWriteResponse, error) {
		s, err := f.findSecret(req.GetKind(), req.GetSecret())
		if err != nil {
			return nil, err
		}
		if d := req.GetSpec().GetData(); len(d) > 0 && string(d) != string(s.GetSpec().GetData()) {
			return nil, status.Errorf(codes.InvalidArgument, "spec.data: the data of %s %q cannot change", s.GetKind(), s.GetSpec().GetName())
		}
		s.Spec.Labels = req.GetSpec().GetLabels()
		return &shoalpb.SecretWriteResponse{Secret: shown(s), Index: 14}, nil
	})
}

// TestStackDeploySecrets deploys the *_FILE pattern: the stack's secrets
// and configs are created before its services (named STACK_KEY, labelled
// with the stack), a redeploy with other data is refused, and stack rm
// removes them after the services.
func TestStackDeploySecrets(t *testing.T) {
	f := newFakeControl()
	runAll(f)
	host := serveTCP(t, f)
	app, _, errOut := testApp(host, "PG_USER=app")
	args := []string{"stack", "deploy", "-d", "-c", "../stack/testdata/secrets/compose.yaml", "shop"}
	// api_key is external: refused until it exists.
	if code := Execute(t.Context(), app, args); code != 1 || !strings.Contains(errOut.String(), `secret "api_key" is external`) {
		t.Fatalf("deploy without the external secret: exit %d, stderr %q", code, errOut)
	}
	if n := len(sent[*shoalpb.CreateServiceRequest](f)) + len(sent[*shoalpb.CreateSecretRequest](f)); n != 0 {
		t.Fatalf("a refused deploy wrote %d objects", n)
	}
	f.secrets = append(f.secrets, &shoalpb.Secret{Id: "ext1", Kind: api.KindSecret, Spec: &shoalpb.SecretSpec{Name: "api_key"}})
	app, out, errOut := testApp(host, "PG_USER=app")
	if code := Execute(t.Context(), app, args); code != 0 {
		t.Fatalf("deploy: exit %d: %s", code, errOut)
	}
	var created []string
	for _, r := range sent[*shoalpb.CreateSecretRequest](f) {
		created = append(created, r.GetKind()+" "+r.GetSpec().GetName()+"="+string(r.GetSpec().GetData())+" "+r.GetSpec().GetLabels()[api.LabelStack])
	}
	want := []string{"secret shop_db_password=pg-s3cret shop", "secret shop_db_user=app shop", "config shop_banner=hello shop", "config shop_pg_conf=listen_addresses = *\n shop"}
	if !slices.Equal(created, want) {
		t.Errorf("created %q, want %q", created, want)
	}
	var db *api.ServiceSpec
	for _, r := range sent[*shoalpb.CreateServiceRequest](f) {
		if r.GetSpec().GetName() == "shop_db" {
			db = shoalpb.ToServiceSpec(r.GetSpec())
		}
	}
	if db == nil || len(db.Secrets) != 2 || db.Secrets[0].FilePath(api.KindSecret) != "/run/secrets/db_password" ||
		!slices.Contains(db.Env, "POSTGRES_PASSWORD_FILE=/run/secrets/db_password") {
		t.Fatalf("shop_db spec = %+v", db)
	}
	checkGolden(t, "stack_deploy_secrets", out.String())

	// The same data again is fine; other data is refused with the reason.
	app, _, errOut = testApp(host, "PG_USER=app")
	if code := Execute(t.Context(), app, args); code != 0 {
		t.Fatalf("redeploy: exit %d: %s", code, errOut)
	}
	app, _, errOut = testApp(host, "PG_USER=root")
	if code := Execute(t.Context(), app, args); code != 1 || !strings.Contains(errOut.String(), `secret "shop_db_user"`) || !strings.Contains(errOut.String(), "cannot change") {
		t.Fatalf("redeploy with other data: exit %d, stderr %q", code, errOut)
	}

	rm := mustRun(t, host, "stack", "rm", "shop")
	for _, w := range []string{"Removing secret shop_db_password", "Removing config shop_pg_conf"} {
		if !strings.Contains(rm, w) {
			t.Errorf("stack rm printed %q, want %q", rm, w)
		}
	}
	if strings.Contains(rm, "api_key") {
		t.Errorf("stack rm removed the external secret:\n%s", rm)
	}
}
