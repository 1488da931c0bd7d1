package stack

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

// TestSecretsAndConfigs loads the *_FILE pattern: top-level secrets from a
// file and from the environment, an external one, configs from a file and
// inline; services use them in the short and the long syntax.
func TestSecretsAndConfigs(t *testing.T) {
	st := mustLoad(t, Options{Name: "shop", Files: []string{"testdata/secrets/compose.yaml"}, Env: []string{"PG_USER=app"}})
	if len(st.Warnings) != 0 {
		t.Errorf("warnings %v, want none: these keys are honoured", st.Warnings)
	}
	byName := map[string]*api.ServiceSpec{}
	for _, s := range st.Services {
		byName[s.Name] = s
	}
	db := byName["shop_db"]
	wantSecrets := []api.SecretReference{
		{SecretName: "shop_db_password", Target: "/run/secrets/db_password"},
		{SecretName: "shop_db_user", Target: "pg_user", UID: 70, GID: 70, Mode: 0o400},
	}
	if !reflect.DeepEqual(db.Secrets, wantSecrets) {
		t.Errorf("db secrets %+v, want %+v", db.Secrets, wantSecrets)
	}
	// The *_FILE variables name the files the secrets become.
	for i, v := range []string{"POSTGRES_PASSWORD_FILE", "POSTGRES_USER_FILE"} {
		env := v + "=" + db.Secrets[i].FilePath(api.KindSecret)
		if !slices.Contains(db.Env, env) {
			t.Errorf("db env %v: no %s, where secret %d is mounted", db.Env, env, i)
		}
	}
	if want := []api.SecretReference{{SecretName: "shop_pg_conf", Target: "/etc/postgresql/postgresql.conf"}}; !reflect.DeepEqual(db.Configs, want) {
		t.Errorf("db configs %+v, want %+v", db.Configs, want)
	}
	app := byName["shop_app"]
	if want := []api.SecretReference{{SecretName: "api_key", Target: "/run/secrets/api_key"}}; !reflect.DeepEqual(app.Secrets, want) {
		t.Errorf("app secrets %+v, want the external api_key", app.Secrets)
	}
	if got := app.Configs[0].FilePath(api.KindConfig); got != "/banner" {
		t.Errorf("app config at %s, want /banner", got)
	}
	label := map[string]string{api.LabelStack: "shop"}
	want := []StackSecret{
		{Kind: api.KindSecret, Spec: api.SecretSpec{Name: "shop_db_password", Data: []byte("pg-s3cret"), Labels: map[string]string{api.LabelStack: "shop", "team": "data"}}},
		{Kind: api.KindSecret, Spec: api.SecretSpec{Name: "shop_db_user", Data: []byte("app"), Labels: label}},
		{Kind: api.KindConfig, Spec: api.SecretSpec{Name: "shop_banner", Data: []byte("hello"), Labels: label}},
		{Kind: api.KindConfig, Spec: api.SecretSpec{Name: "shop_pg_conf", Data: []byte("listen_addresses = *\n"), Labels: label}},
	}
	if !reflect.DeepEqual(st.Secrets, want) {
		t.Errorf("stack secrets\n%+v\nwant\n%+v", st.Secrets, want)
	}
	if want := []ExternalSecret{{Kind: api.KindSecret, Name: "api_key"}}; !reflect.DeepEqual(st.ExternalSecrets, want) {
		t.Errorf("external %+v, want %+v", st.ExternalSecrets, want)
	}
}

func TestBadSecretValues(t *testing.T) {
	for want, yaml := range map[string]string{
		`secrets.token "st_token": file:`:                "services: {web: {image: busybox, secrets: [token]}}\nsecrets: {token: {file: ./nope.txt}}\n",
		`secrets.token "st_token": environment:`:         "services: {web: {image: busybox, secrets: [token]}}\nsecrets: {token: {environment: NOT_SET_ANYWHERE}}\n",
		`services.web.secrets[0].uid "root"`:             "services: {web: {image: busybox, secrets: [{source: token, uid: root}]}}\nsecrets: {token: {file: ./t}}\n",
		`services.web.configs[0].mode "01000"`:           "services: {web: {image: busybox, configs: [{source: c, mode: 01000}]}}\nconfigs: {c: {file: ./t}}\n",
		`secrets.big "st_big": spec.data "512001 bytes"`: "services: {web: {image: busybox, secrets: [big]}}\nsecrets: {big: {file: ./big}}\n",
	} {
		dir := t.TempDir()
		for name, data := range map[string]string{"compose.yaml": yaml, "t": "x", "big": strings.Repeat("x", api.MaxSecretBytes+1)} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := load(t, Options{Files: []string{filepath.Join(dir, "compose.yaml")}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load %q: err = %v, want one naming %s", yaml, err, want)
		}
	}
}
