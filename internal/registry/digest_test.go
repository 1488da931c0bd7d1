package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent/containerd/containerdtest"
)

// TestDigest resolves tags against a registry on loopback over plain HTTP,
// and sees a moved tag name the new manifest.
func TestDigest(t *testing.T) {
	reg := containerdtest.StartRegistry(t)
	r, err := New(Options{Insecure: []string{reg.Host}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	first, err := r.Digest(ctx, reg.Image)
	if err != nil || !strings.HasPrefix(first, "sha256:") {
		t.Fatalf("digest = %q, %v", first, err)
	}
	moved := reg.Push(t, "shoal/busybox:latest", "v2")
	again, err := r.Digest(ctx, reg.Image)
	if err != nil || again != moved || again == first {
		t.Fatalf("after moving the tag: %q, %v; want %q (not %q)", again, err, moved, first)
	}
	pinned := reg.Host + "/shoal/busybox@" + first
	if d, err := r.Digest(ctx, pinned); err != nil || d != first {
		t.Fatalf("digest of a pinned reference = %q, %v", d, err)
	}
	if _, err := r.Digest(ctx, reg.Host+"/shoal/none:latest"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing image: %v, want ErrNotFound", err)
	}
	secure, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secure.Digest(ctx, reg.Image); err == nil {
		t.Fatal("a registry not listed as insecure was reached over plain HTTP")
	}
}
