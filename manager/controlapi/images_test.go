package controlapi_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
	"github.com/shoal-sched/shoal/internal/registry"
	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestImagePinnedOnWrite: the leader resolves a service's image tag to a
// digest on create and when the image changes, from a registry on
// loopback (plain HTTP, as the lab's), and keeps the digest when only
// something else changes, however the tag moved meanwhile.
func TestImagePinnedOnWrite(t *testing.T) {
	reg := containerdtest.StartRegistry(t)
	c := managertest.StartCluster(t, 3, managertest.Options{Edit: func(cfg *manager.Config) {
		cfg.NodeGracePeriod = time.Hour
		cfg.Images = &registry.Options{Insecure: []string{reg.Host}}
	}})
	cl := c.Client((c.WaitLeader(waitTimeout) + 1) % 3)
	ctx := t.Context()
	web := &shoalpb.ServiceSpec{Name: "web", Image: reg.Image, Mode: "replicated", Replicas: 1}

	resp, err := cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: web})
	if err != nil {
		t.Fatal(err)
	}
	first := resp.GetService().GetSpec().GetImageDigest()
	if !strings.HasPrefix(first, "sha256:") || resp.GetService().GetSpec().GetImage() != reg.Image {
		t.Fatalf("created spec image %q digest %q, want the tag kept and a digest", resp.GetService().GetSpec().GetImage(), first)
	}
	moved := reg.Push(t, "shoal/busybox:latest", "moved")

	upd := resp.GetService().GetSpec()
	upd.Replicas = 3
	resp, err = cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd})
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetService().GetSpec().GetImageDigest(); d != first {
		t.Fatalf("after a scale the digest is %q, want the first one %q kept", d, first)
	}

	upd = resp.GetService().GetSpec()
	upd.ImageDigest = "" // what shoalctl service update --image sends
	resp, err = cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd})
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetService().GetSpec().GetImageDigest(); d != moved {
		t.Fatalf("after --image the digest is %q, want the moved tag's %q", d, moved)
	}

	// Back to the first spec with its digest (a rollback): the digest given
	// is kept, not the one the tag names now.
	upd = resp.GetService().GetSpec()
	upd.Image, upd.ImageDigest = reg.Host+"/shoal/busybox", first
	resp, err = cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd})
	if err != nil || resp.GetService().GetSpec().GetImageDigest() != first {
		t.Fatalf("rollback to the first digest: %q, %v", resp.GetService().GetSpec().GetImageDigest(), err)
	}
	// A new image with the stale digest is resolved again.
	upd = resp.GetService().GetSpec()
	upd.Image = reg.Image
	resp, err = cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: "web", Spec: upd})
	if err != nil || resp.GetService().GetSpec().GetImageDigest() != moved {
		t.Fatalf("new image with the old digest: %q, %v; want %q", resp.GetService().GetSpec().GetImageDigest(), err, moved)
	}

	plain := &shoalpb.ServiceSpec{Name: "plain", Image: reg.Image, Mode: "replicated", Replicas: 1}
	resp, err = cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: plain, NoResolveImage: true})
	if err != nil || resp.GetService().GetSpec().GetImageDigest() != "" {
		t.Fatalf("--no-resolve-image: digest %q, %v; want none", resp.GetService().GetSpec().GetImageDigest(), err)
	}

	before := fingerprint(t, c)
	missing := &shoalpb.ServiceSpec{Name: "missing", Image: reg.Host + "/shoal/none:1", Mode: "replicated", Replicas: 1}
	_, err = cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: missing})
	wantCode(t, err, codes.NotFound, "shoal/none:1", "--no-resolve-image")
	bad := &shoalpb.ServiceSpec{Name: "bad", Image: reg.Image, Mode: "replicated", Replicas: 1, ImageDigest: "sha256:nothex"}
	_, err = cl.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: bad})
	wantCode(t, err, codes.InvalidArgument, "spec.image_digest", "sha256:nothex")
	if after := fingerprint(t, c); after != before {
		t.Fatalf("refused writes changed the state:\n%s\n%s", before, after)
	}
}
