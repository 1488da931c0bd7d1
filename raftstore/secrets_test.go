package raftstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func testSecret(kind, id, name, data string) *api.Secret {
	return &api.Secret{ID: id, Kind: kind, Spec: api.SecretSpec{Name: name, Data: []byte(data)}, CreatedAt: t0, UpdatedAt: t0}
}

// secretsDump is everything the store holds of secrets and configs.
func secretsDump(t *testing.T, s *State) string {
	t.Helper()
	b, err := json.Marshal([]any{s.Read().Secrets(api.KindSecret), s.Read().Secrets(api.KindConfig), s.Read().Services()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSecretCommandsRefuseAndChangeNothing(t *testing.T) {
	s := fixture(t)
	for _, c := range []Command{
		CreateSecret{Secret: testSecret(api.KindSecret, "sec1", "db_password", "s3cret")},
		CreateSecret{Secret: testSecret(api.KindConfig, "cfg1", "app_conf", "k=v")},
	} {
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatal(err)
		}
	}
	spec := s.Read().ServiceByName("web").Spec
	spec.Secrets = []api.SecretReference{{SecretID: "sec1", SecretName: "db_password"}}
	if _, _, err := s.apply(0, UpdateService{ID: "svc-web", Spec: spec, At: t0}); err != nil {
		t.Fatal(err)
	}
	unknown := s.Read().ServiceByName("web").Spec
	unknown.Configs = []api.SecretReference{{SecretID: "nope", SecretName: "missing"}}
	big := testSecret(api.KindSecret, "sec2", "big", strings.Repeat("x", api.MaxSecretBytes+1))
	cases := []struct {
		name string
		cmd  Command
		want error
		text []string
	}{
		{"taken name", CreateSecret{Secret: testSecret(api.KindSecret, "sec2", "db_password", "x")}, ErrAlreadyExists, []string{`"db_password"`}},
		{"over 500 KiB", CreateSecret{Secret: big}, ErrInvalid, []string{"spec.data", "512001 bytes", "at most 512000"}},
		{"bad name", CreateSecret{Secret: testSecret(api.KindSecret, "sec2", "-bad", "x")}, ErrInvalid, []string{"spec.name", `"-bad"`, "letter or digit"}},
		{"bad kind", CreateSecret{Secret: testSecret("volume", "sec2", "x", "x")}, ErrInvalid, []string{`kind "volume"`}},
		{"unknown config in a spec", UpdateService{ID: "svc-web", Spec: unknown, At: t0}, ErrNotFound, []string{"spec.configs[0]", `"missing"`}},
		{"remove in use", RemoveSecret{Kind: api.KindSecret, ID: "sec1"}, ErrConflict, []string{`"db_password" is in use by service "web"`}},
		{"remove unknown", RemoveSecret{Kind: api.KindConfig, ID: "sec1"}, ErrNotFound, []string{`config id "sec1"`}},
		{"stale update", UpdateSecret{Kind: api.KindSecret, ID: "sec1", ExpectedVersion: 7}, ErrConflict, []string{"at version 1, expected 7"}},
	}
	before := secretsDump(t, s)
	for _, c := range cases {
		_, _, err := s.apply(0, c.cmd)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		for _, text := range c.text {
			if !strings.Contains(err.Error(), text) {
				t.Errorf("%s: err = %q, want it to name %s", c.name, err, text)
			}
		}
		if after := secretsDump(t, s); after != before {
			t.Errorf("%s: the refusal changed the state:\n%s\nwas\n%s", c.name, after, before)
		}
	}
	// A label update keeps the data; the event never carries it.
	events, cancel := s.Subscribe(4)
	defer cancel()
	if _, _, err := s.apply(0, UpdateSecret{Kind: api.KindSecret, ID: "sec1", Labels: map[string]string{"env": "prod"}, At: t0}); err != nil {
		t.Fatal(err)
	}
	got := s.Read().Secret(api.KindSecret, "sec1")
	if string(got.Spec.Data) != "s3cret" || got.Spec.Labels["env"] != "prod" || got.Version != 2 {
		t.Errorf("after a label update: %+v", got)
	}
	batch := <-events
	if len(batch) != 1 {
		t.Fatalf("events = %+v, want one", batch)
	}
	ev := batch[0]
	if ev.Secret == nil || ev.Secret.Spec.Data != nil || ev.Kind != api.KindSecret {
		t.Errorf("event = %+v, want a secret event without data", ev)
	}
	// Once no service uses it, it goes.
	spec.Secrets = nil
	if _, _, err := s.apply(0, UpdateService{ID: "svc-web", Spec: spec, At: t0}); err != nil {
		t.Fatal(err)
	}
	// The previous spec (a rollback's target) still names it.
	if _, _, err := s.apply(0, RemoveSecret{Kind: api.KindSecret, ID: "sec1"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("remove while the previous spec uses it: err = %v", err)
	}
	if _, _, err := s.apply(0, UpdateService{ID: "svc-web", Spec: spec, At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.apply(0, RemoveSecret{Kind: api.KindSecret, ID: "sec1"}); err != nil {
		t.Fatalf("remove unused: %v", err)
	}
	if s.Read().Secret(api.KindSecret, "sec1") != nil {
		t.Error("secret still there after remove")
	}
}

func TestSecretsSurviveSnapshotAndLog(t *testing.T) {
	s := fixture(t)
	sec := testSecret(api.KindSecret, "sec1", "db_password", "s3cret")
	sec.Spec.Labels = map[string]string{"a": "b"}
	cfg := testSecret(api.KindConfig, "cfg1", "app_conf", "k=v\n")
	for _, c := range []Command{CreateSecret{Secret: sec}, CreateSecret{Secret: cfg}} {
		if _, _, err := s.apply(0, c); err != nil {
			t.Fatal(err)
		}
	}
	sec.Version, cfg.Version = 1, 1
	var buf bytes.Buffer
	if err := s.Read().WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	db, _, err := readSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := NewState()
	r.replace(db, 1)
	if got := r.Read().SecretByName(api.KindSecret, "db_password"); !reflect.DeepEqual(got, sec) {
		t.Errorf("restored secret = %+v, want %+v", got, sec)
	}
	if got := r.Read().SecretByName(api.KindConfig, "app_conf"); !reflect.DeepEqual(got, cfg) {
		t.Errorf("restored config = %+v, want %+v", got, cfg)
	}
	if got := r.Read().SecretByName(api.KindConfig, "db_password"); got != nil {
		t.Errorf("a secret came back as a config: %+v", got)
	}
	for _, c := range []Command{CreateSecret{Secret: sec}, UpdateSecret{Kind: api.KindConfig, ID: "cfg1", Labels: map[string]string{"x": "y"}, At: t0},
		RemoveSecret{Kind: api.KindSecret, ID: "sec1"}} {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		w1, _ := json.Marshal(c)
		w2, _ := json.Marshal(back)
		if !bytes.Equal(w1, w2) {
			t.Errorf("%T round trip: %s != %s", c, w2, w1)
		}
	}
}
