package labregistry

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBusyboxImage(t *testing.T) {
	img, err := Busybox(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || strings.Join(cfg.Config.Cmd, " ") != "sh" {
		t.Fatalf("config = %s/%s cmd %q", cfg.OS, cfg.Architecture, cfg.Config.Cmd)
	}
	// The same binary gives the same image.
	again, err := Busybox(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	d1, err1 := img.Digest()
	d2, err2 := again.Digest()
	if err1 != nil || err2 != nil || d1 != d2 {
		t.Fatalf("digests %s (%v) and %s (%v) differ", d1, err1, d2, err2)
	}
	if _, err := Busybox("/no/such/busybox"); err == nil || !strings.Contains(err.Error(), "/no/such/busybox") {
		t.Fatalf("missing binary error = %v", err)
	}
}

func TestRunServesImage(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addrC := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Ready: func(a string) { addrC <- a }})
	}()
	var addr string
	select {
	case addr = <-addrC:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("registry not ready after 30s")
	}
	ref, err := name.ParseReference(addr+"/"+DefaultRepository, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("fetch %s: %v", ref, err)
	}
	want, err := Busybox(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := want.Digest(); got != w {
		t.Fatalf("served digest %s, want %s", got, w)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}
