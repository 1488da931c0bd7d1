package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(manager.Config) error
		wantErr string
	}{
		{name: "defaults", args: nil, check: func(c manager.Config) error {
			if c.DataDir != "/var/lib/shoal/manager" || c.Addr != "127.0.0.1:4242" || c.RaftAddr != "127.0.0.1:4243" || c.Logger == nil {
				return errors.New("unexpected defaults")
			}
			return nil
		}},
		{name: "all", args: []string{
			"--data-dir", "/d", "--addr", "10.0.0.1:1", "--raft-addr", "10.0.0.1:2", "--join", "10.0.0.2:1",
			"--socket", "/s.sock", "--gossip-addr", "10.0.0.1:3", "--gossip-key", "a2V5",
			"--raft-heartbeat-timeout", "200ms", "--raft-election-timeout", "300ms", "--raft-snapshot-threshold", "99",
			"--gossip-probe-interval", "150ms", "--gossip-suspicion-mult", "3", "--node-grace-period", "2s",
			"--node-reconnect-window", "6s", "--log-level", "debug",
		}, check: func(c manager.Config) error {
			if c.DataDir != "/d" || c.Join != "10.0.0.2:1" || c.Socket != "/s.sock" || c.GossipKey != "a2V5" ||
				c.Raft.HeartbeatTimeout != 200*time.Millisecond || c.Raft.ElectionTimeout != 300*time.Millisecond ||
				c.Raft.SnapshotThreshold != 99 || c.Gossip.ProbeInterval != 150*time.Millisecond ||
				c.Gossip.SuspicionMult != 3 || c.NodeGracePeriod != 2*time.Second || c.NodeReconnectWindow != 6*time.Second {
				return errors.New("a flag was not parsed into the config")
			}
			return nil
		}},
		{name: "force new cluster", args: []string{"--force-new-cluster"}, check: func(c manager.Config) error {
			if !c.ForceNewCluster {
				return errors.New("force new cluster not set")
			}
			return nil
		}},
		{name: "registries", args: []string{
			"--insecure-registry", "reg:5000,other:80", "--registry-mirror", "mirror:5000", "--registry-config", "/c.json",
		}, check: func(c manager.Config) error {
			if c.Images == nil || strings.Join(c.Images.Insecure, ",") != "reg:5000,other:80" ||
				c.Images.Mirrors["docker.io"][0] != "mirror:5000" || c.Images.DockerConfig != "/c.json" {
				return fmt.Errorf("registry options %+v", c.Images)
			}
			return nil
		}},
		{name: "no resolution", args: []string{"--resolve-images=false"}, check: func(c manager.Config) error {
			if c.Images != nil {
				return errors.New("images are resolved with --resolve-images=false")
			}
			return nil
		}},
		{name: "bad mirror", args: []string{"--registry-mirror", "=x"}, wantErr: "--registry-mirror"},
		{name: "bad level", args: []string{"--log-level", "loud"}, wantErr: `--log-level "loud"`},
		{name: "bad duration", args: []string{"--raft-heartbeat-timeout", "soon"}, wantErr: "raft-heartbeat-timeout"},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.check(cfg); err != nil {
				t.Fatalf("%v: %+v", err, cfg)
			}
		})
	}
}

func TestRunServesAndStops(t *testing.T) {
	dir, err := os.MkdirTemp("", "shoal-cmd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The test's image is a name only: no registry to resolve it in.
	cfg, err := parseFlags([]string{"--data-dir", dir, "--addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0", "--resolve-images=false"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg) }()

	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "control.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := shoalpb.NewControlClient(conn)
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		_, err := cl.CreateService(rctx, &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{Name: "web", Image: "busybox"}})
		rcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write through the socket within 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after a clean stop", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return within 20s of the stop")
	}

	if err := run(t.Context(), manager.Config{DataDir: dir, Addr: "0.0.0.0:0", RaftAddr: "127.0.0.1:0"}); !errors.Is(err, manager.ErrConfig) {
		t.Fatalf("run with a wildcard addr: %v, want a config error", err)
	}
	for _, bad := range []manager.Config{
		{DataDir: dir, Addr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", AdvertiseAddr: "0.0.0.0:7000"},
		{DataDir: dir, Addr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", RaftAdvertiseAddr: "no-port"},
	} {
		err := run(t.Context(), bad)
		if !errors.Is(err, manager.ErrConfig) || !strings.Contains(err.Error(), "advertise addr") {
			t.Fatalf("run with advertise %q / raft advertise %q: %v, want a config error naming the field",
				bad.AdvertiseAddr, bad.RaftAdvertiseAddr, err)
		}
	}
}
