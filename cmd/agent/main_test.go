package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/registry"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "minimal", args: []string{"--join", "127.0.0.1:4242", "--runtime", "fake"}, check: func(t *testing.T, c config) {
			if len(c.agent.Join) != 1 || c.runtime != "fake" || c.agent.LeaveOnStop || c.agent.RestartHold != 30*time.Second {
				t.Errorf("config = %+v", c)
			}
		}},
		{name: "join list and repeat", args: []string{"--join", "a:1, b:2", "--join", "c:3"}, check: func(t *testing.T, c config) {
			if strings.Join(c.agent.Join, " ") != "a:1 b:2 c:3" {
				t.Errorf("join = %v", c.agent.Join)
			}
		}},
		{name: "resources and labels", args: []string{"--join", "a:1", "--cpus", "1.5", "--memory", "512MiB", "--label", "zone=a", "--label", "disk=ssd"},
			check: func(t *testing.T, c config) {
				if c.agent.Resources.NanoCPUs != 1_500_000_000 || c.agent.Resources.MemoryBytes != 512<<20 {
					t.Errorf("resources = %+v", c.agent.Resources)
				}
				if c.agent.Labels["zone"] != "a" || c.agent.Labels["disk"] != "ssd" {
					t.Errorf("labels = %v", c.agent.Labels)
				}
			}},
		{name: "gossip key", args: []string{"--join", "a:1", "--gossip-key", "MDEyMzQ1Njc4OWFiY2RlZg=="}, check: func(t *testing.T, c config) {
			if len(c.agent.GossipKey) != 16 {
				t.Errorf("gossip key is %d bytes", len(c.agent.GossipKey))
			}
		}},
		{name: "restart hold and leave", args: []string{"--join", "a:1", "--restart-hold", "2m", "--leave-on-stop"}, check: func(t *testing.T, c config) {
			if c.agent.RestartHold != 2*time.Minute || !c.agent.LeaveOnStop {
				t.Errorf("restart hold %s, leave on stop %v", c.agent.RestartHold, c.agent.LeaveOnStop)
			}
		}},
		{name: "no restart hold", args: []string{"--join", "a:1", "--restart-hold", "0s"}, check: func(t *testing.T, c config) {
			if c.agent.RestartHold != 0 {
				t.Errorf("restart hold %s, want 0", c.agent.RestartHold)
			}
		}},
		{name: "negative restart hold", args: []string{"--join", "a:1", "--restart-hold", "-1s"}, wantErr: "--restart-hold -1s: want 0 (no hold) or a duration up to 1h0m0s"},
		{name: "huge restart hold", args: []string{"--join", "a:1", "--restart-hold", "48h"}, wantErr: "--restart-hold 48h0m0s"},
		{name: "no join", args: []string{}, wantErr: "--join"},
		{name: "bad cpus", args: []string{"--join", "a:1", "--cpus", "lots"}, wantErr: "--cpus"},
		{name: "zero memory", args: []string{"--join", "a:1", "--memory", "0"}, wantErr: "--memory"},
		{name: "bad label", args: []string{"--join", "a:1", "--label", "novalue"}, wantErr: "KEY=VALUE"},
		{name: "bad key", args: []string{"--join", "a:1", "--gossip-key", "short"}, wantErr: "--gossip-key"},
		{name: "bad level", args: []string{"--join", "a:1", "--log-level", "loud"}, wantErr: "--log-level"},
		{name: "stray arg", args: []string{"--join", "a:1", "extra"}, wantErr: `"extra"`},
		{name: "manager host", args: []string{"--join", "a:1", "--manager-data-dir", "/m", "--data-dir", "/a"}, check: func(t *testing.T, c config) {
			if c.managerDir != "/m" || c.agent.SharedCredentialsDir != "/m" {
				t.Errorf("manager dir %q, shared credentials dir %q; want /m", c.managerDir, c.agent.SharedCredentialsDir)
			}
		}},
		{name: "manager host with a token", args: []string{"--join", "a:1", "--manager-data-dir", "/m", "--token", "SWMTKN-x"}, wantErr: "--token with --manager-data-dir"},
		{name: "manager host with gossip", args: []string{"--join", "a:1", "--manager-data-dir", "/m", "--gossip-addr", "127.0.0.1:7946"}, wantErr: "--gossip-addr"},
		{name: "manager host in its dir", args: []string{"--join", "a:1", "--manager-data-dir", "/m/", "--data-dir", "/m"}, wantErr: "a data dir of its own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestNewRuntime(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config
		wantErr string
	}{
		{"fake", config{runtime: "fake"}, ""},
		{"containerd without a daemon", config{runtime: "containerd", ctrd: containerdConfig{address: "/nonexistent/containerd.sock", namespace: "shoal"}}, "is containerd running"},
		{"unknown", config{runtime: "docker"}, `"docker"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.agent.DataDir = t.TempDir()
			rt, closeRT, err := newRuntime(t.Context(), tc.cfg)
			if tc.wantErr == "" {
				if err != nil || rt == nil {
					t.Fatalf("runtime %v, err %v", rt, err)
				}
				if err := closeRT(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseMirrors(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr bool
	}{
		{[]string{"mirror:5000"}, "map[docker.io:[mirror:5000]]", false},
		{[]string{"reg:5000=m1:5000", "reg:5000=m2"}, "map[reg:5000:[m1:5000 m2]]", false},
		{[]string{"=m1"}, "", true},
		{[]string{"reg="}, "", true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			got, err := registry.ParseMirrors(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && fmt.Sprint(got) != tc.want {
				t.Errorf("mirrors = %v, want %s", got, tc.want)
			}
		})
	}
}
