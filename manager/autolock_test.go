package manager_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/internal/seal"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

const atRestMarker = "MARKER-at-rest-93f1"

// filesWith lists the files under dir whose bytes contain s.
func filesWith(t *testing.T, dir, s string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantCode checks a call's error code and that its message says want.
func wantCode(t *testing.T, what string, err error, code codes.Code, want string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), want) {
		t.Fatalf("%s: %v; want %s saying %q", what, err, code, want)
	}
}

// waitLocked waits until the restarted manager i answers, locked.
func waitLocked(t *testing.T, c *managertest.Cluster, i int) {
	t.Helper()
	c.WaitFor(waitTimeout, func() error {
		_, err := c.Client(i).ClusterStatus(t.Context(), &shoalpb.ClusterStatusRequest{})
		if status.Code(err) == codes.FailedPrecondition {
			return nil
		}
		return fmt.Errorf("manager %d not answering locked yet: %v", i, err)
	})
}

func unlock(t *testing.T, c *managertest.Cluster, i int, key string) error {
	t.Helper()
	_, err := c.SocketClient(i).UnlockCluster(t.Context(), &shoalpb.UnlockClusterRequest{UnlockKey: key})
	return err
}

func keyFileLocked(t *testing.T, dir string) bool {
	t.Helper()
	st, err := seal.LoadKey(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.Locked
}

// With autolock a restarted manager serves nothing but the unlock through
// its socket, refuses wrong keys, and comes back with its state; the
// unlock key rotates; no file of the data dir holds a service's env.
func TestAutolock(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true})
	dir := c.DataDir(0)
	spec := spec("web")
	spec.Env = []string{"SECRET=" + atRestMarker}
	if _, err := c.Client(0).CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Client(0).GetUnlockKey(t.Context(), &shoalpb.GetUnlockKeyRequest{})
	wantCode(t, "unlock key while autolock is off", err, codes.FailedPrecondition, "autolock is off")
	on := true
	resp, err := c.Client(0).UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{Autolock: &on})
	if err != nil || !strings.HasPrefix(resp.GetUnlockKey(), "SHLKEY-1-") || !resp.GetSettings().GetAutolock() {
		t.Fatalf("turn autolock on: %v, %v", resp, err)
	}
	key := resp.GetUnlockKey()
	c.WaitFor(waitTimeout, func() error {
		if !keyFileLocked(t, dir) {
			return errors.New("the data key is not wrapped yet")
		}
		return nil
	})
	if got, err := c.Client(0).GetUnlockKey(t.Context(), &shoalpb.GetUnlockKeyRequest{}); err != nil || got.GetUnlockKey() != key {
		t.Fatalf("GetUnlockKey = %v, %v; want the key autolock gave", got, err)
	}
	c.Stop(0)
	if files := filesWith(t, dir, atRestMarker); len(files) > 0 {
		t.Fatalf("a service's env is in plaintext in %v", files)
	}

	c.Restart(0)
	waitLocked(t, c, 0)
	_, err = c.Client(0).ListServices(t.Context(), &shoalpb.ListServicesRequest{})
	wantCode(t, "list services while locked", err, codes.FailedPrecondition, "locked: run shoalctl cluster unlock")
	_, err = c.SocketClient(0).ListServices(t.Context(), &shoalpb.ListServicesRequest{})
	wantCode(t, "list services on the socket while locked", err, codes.FailedPrecondition, "locked: run shoalctl cluster unlock")
	_, err = c.Client(0).UnlockCluster(t.Context(), &shoalpb.UnlockClusterRequest{UnlockKey: key})
	wantCode(t, "unlock over TCP", err, codes.PermissionDenied, "control socket")
	wantCode(t, "unlock with a wrong key", unlock(t, c, 0, seal.FormatUnlockKey(seal.NewKey())), codes.PermissionDenied, "wrong unlock key")
	wantCode(t, "unlock with a malformed key", unlock(t, c, 0, "hunter2"), codes.InvalidArgument, "not an unlock key")
	if err := unlock(t, c, 0, key); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	c.WaitLeader(waitTimeout)
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, 0, "web") })
	svc, err := c.Client(0).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "web"})
	if err != nil || len(svc.GetSpec().GetEnv()) != 1 || svc.GetSpec().GetEnv()[0] != "SECRET="+atRestMarker {
		t.Fatalf("the service read back after the unlock: %v, %v", svc, err)
	}
	wantCode(t, "unlock an unlocked manager", unlock(t, c, 0, key), codes.FailedPrecondition, "not locked")

	// Rotation: the data key is re-wrapped with the new key.
	rot, err := c.Client(0).GetUnlockKey(t.Context(), &shoalpb.GetUnlockKeyRequest{Rotate: true})
	if err != nil || rot.GetUnlockKey() == key || rot.GetIndex() == 0 {
		t.Fatalf("rotate: %v, %v", rot, err)
	}
	newKey, _ := seal.ParseUnlockKey(rot.GetUnlockKey())
	c.WaitFor(waitTimeout, func() error {
		_, err := seal.LoadKey(dir, newKey)
		return err
	})
	c.Stop(0)
	c.Restart(0)
	waitLocked(t, c, 0)
	wantCode(t, "unlock with the key before the rotation", unlock(t, c, 0, key), codes.PermissionDenied, "wrong unlock key")
	if err := unlock(t, c, 0, rot.GetUnlockKey()); err != nil {
		t.Fatalf("unlock with the rotated key: %v", err)
	}
	c.WaitLeader(waitTimeout)

	// Off again: the data key is stored unwrapped (0600).
	off := false
	if _, err := c.Client(0).UpdateCluster(t.Context(), &shoalpb.UpdateClusterRequest{Autolock: &off}); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(waitTimeout, func() error {
		if keyFileLocked(t, dir) {
			return errors.New("the data key is still wrapped")
		}
		return nil
	})
	if fi, err := os.Stat(filepath.Join(dir, seal.KeyFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
}

// A data dir written before encryption (no data key) keeps working: the
// manager makes a data key, reads the old entries as they are, and seals
// what it writes from then on.
func TestUnencryptedDataDirKeepsWorking(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manager-id"), []byte("m-old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := raftstore.Open(raftstore.Config{ID: "m-old", DataDir: dir, RaftAddr: "127.0.0.1:0", Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	managertest.WaitFor(t, waitTimeout, func() error {
		if !old.IsLeader() {
			return errors.New("the old member does not lead yet")
		}
		return nil
	})
	svc := &api.Service{ID: "svc-old", Spec: api.ServiceSpec{Name: "old", Image: "busybox:latest", Mode: api.ModeReplicated, Replicas: 1,
		Env: []string{"OLD=" + atRestMarker}}}
	if _, err := old.Apply(t.Context(), raftstore.CreateService{Service: svc}); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if len(filesWith(t, dir, atRestMarker)) == 0 {
		t.Fatal("the test's premise fails: the old data dir does not hold the marker in plaintext")
	}
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true, Edit: func(cfg *manager.Config) { cfg.DataDir = dir }})
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, 0, "old") })
	if st, err := seal.LoadKey(dir, nil); err != nil || st.Locked || len(st.Key) != seal.KeySize {
		t.Fatalf("data key after the upgrade: %+v, %v", st, err)
	}
	sp := spec("new")
	sp.Env = []string{"NEW=" + atRestMarker + "-new"}
	if _, err := c.Client(0).CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: sp}); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	if files := filesWith(t, dir, atRestMarker+"-new"); len(files) > 0 {
		t.Fatalf("a service written after the upgrade is in plaintext in %v", files)
	}
	c.Restart(0)
	c.WaitFor(waitTimeout, func() error { return hasServices(t, c, 0, "new", "old") })
}
