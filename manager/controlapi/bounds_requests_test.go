package controlapi_test

import (
	"context"
	"fmt"
	"math"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// requestCases are the bad fields of every request besides the spec.
func requestCases() []badCase {
	scale := func(ref string, n uint64) func(context.Context, shoalpb.ControlClient) error {
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.ScaleService(ctx, &shoalpb.ScaleServiceRequest{Service: ref, Replicas: n})
			return err
		}
	}
	cases := []badCase{
		{name: "scale overflow", call: scale("big", math.MaxUint64), parts: []string{"replicas", `"18446744073709551615"`, "100000"}},
		{name: "scale over ceiling", call: scale("big", 100_001), parts: []string{"replicas", `"100001"`, "100000"}},
		{name: "scale over max-replicas", call: scale("big", 10_001), parts: []string{"replicas", `"10001"`, "max-replicas, 10000"}, barrier: true},
		{name: "scale global", call: scale("agentd", 3), parts: []string{`"agentd" is global`}, barrier: true},
		{name: "scale ref empty", call: scale("", 1), parts: []string{"service", "missing"}},
		{name: "scale ref oversize", call: scale(big(257), 1), parts: []string{"service", "at most 256"}},
		{name: "update ref oversize", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.UpdateService(ctx, &shoalpb.UpdateServiceRequest{Service: big(1 << 20), Spec: validSpec("web")})
			return err
		}, parts: []string{"service", "(1048576 bytes)", "at most 256"}},
		{name: "remove ref empty", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RemoveService(ctx, &shoalpb.RemoveServiceRequest{})
			return err
		}, parts: []string{"service", "missing"}},
		{name: "get ref oversize", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.GetService(ctx, &shoalpb.GetServiceRequest{Service: big(300)})
			return err
		}, parts: []string{"service", "at most 256"}},
		{name: "list tasks node oversize", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.ListTasks(ctx, &shoalpb.ListTasksRequest{Node: big(300)})
			return err
		}, parts: []string{"node", "at most 256"}},
		{name: "get node ref empty", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.GetNode(ctx, &shoalpb.GetNodeRequest{})
			return err
		}, parts: []string{"node", "missing"}},
		{name: "remove node ref oversize", call: func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.RemoveNode(ctx, &shoalpb.RemoveNodeRequest{Node: big(300), Force: true})
			return err
		}, parts: []string{"node", "at most 256"}},
	}
	cases = append(cases, nodeCases()...)
	cases = append(cases, streamCases()...)
	cases = append(cases, rolloutRequestCases()...)
	return append(cases, clusterCases()...)
}

func nodeCases() []badCase {
	update := func(req *shoalpb.UpdateNodeRequest) func(context.Context, shoalpb.ControlClient) error {
		if req.Node == "" {
			req.Node = "n1"
		}
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.UpdateNode(ctx, req)
			return err
		}
	}
	many := map[string]string{}
	for i := range 257 {
		many[fmt.Sprint("k", i)] = "v"
	}
	hundred := map[string]string{}
	for i := range 100 {
		hundred[fmt.Sprint("new", i)] = "v"
	}
	return []badCase{
		{name: "node availability malformed", call: update(&shoalpb.UpdateNodeRequest{Availability: "asleep"}), parts: []string{"availability", `"asleep"`, "active, pause or drain"}},
		{name: "node label_add oversize list", call: update(&shoalpb.UpdateNodeRequest{LabelAdd: many}), parts: []string{"label_add", "257 entries", "at most 256"}},
		{name: "node label_add empty key", call: update(&shoalpb.UpdateNodeRequest{LabelAdd: map[string]string{"": "x"}}), parts: []string{"label_add", "empty label key"}},
		{name: "node label_add oversize key", call: update(&shoalpb.UpdateNodeRequest{LabelAdd: map[string]string{big(257): "x"}}), parts: []string{"label_add", "at most 256"}},
		{name: "node label_add oversize value", call: update(&shoalpb.UpdateNodeRequest{LabelAdd: map[string]string{"k": big(1 << 20)}}), parts: []string{"label_add[k]", "(1048576 bytes)", "at most 4096"}},
		{name: "node label_rm oversize list", call: update(&shoalpb.UpdateNodeRequest{LabelRm: list(257, "k")}), parts: []string{"label_rm", "257 entries", "at most 256"}},
		{name: "node label_rm empty key", call: update(&shoalpb.UpdateNodeRequest{LabelRm: []string{""}}), parts: []string{"label_rm[0]", "empty label key"}},
		{name: "node label added and removed", call: update(&shoalpb.UpdateNodeRequest{LabelAdd: map[string]string{"z": "1"}, LabelRm: []string{"z"}}), parts: []string{"label_rm[0]", `"z"`, "both added and removed"}},
		{name: "node labels over the limit in total", call: update(&shoalpb.UpdateNodeRequest{LabelAdd: hundred}), parts: []string{"labels", "300 entries", "at most 256"}, barrier: true},
		{name: "node ref oversize", call: update(&shoalpb.UpdateNodeRequest{Node: big(300), Availability: "drain"}), parts: []string{"node", "at most 256"}},
	}
}

// streamCases are bad events and logs requests; a stream's error comes
// with its first Recv.
func streamCases() []badCase {
	events := func(filters ...string) func(context.Context, shoalpb.ControlClient) error {
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			s, err := cl.Events(ctx, &shoalpb.EventsRequest{Filters: filters})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}
	}
	logs := func(req *shoalpb.ServiceLogsRequest) func(context.Context, shoalpb.ControlClient) error {
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			s, err := cl.ServiceLogs(ctx, req)
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}
	}
	return []badCase{
		{name: "events oversize list", call: events(list(33, "type=task")...), parts: []string{"filters", "33 entries", "at most 32"}},
		{name: "events filter oversize", call: events("service=" + big(600)), parts: []string{"filters[0]", "at most 512"}},
		{name: "events filter malformed", call: events("colour=red"), parts: []string{`"colour=red"`, "unknown key"}},
		{name: "logs tail negative", call: logs(&shoalpb.ServiceLogsRequest{Service: "web", Tail: -2}), parts: []string{"tail", `"-2"`, "100000"}},
		{name: "logs tail overflow", call: logs(&shoalpb.ServiceLogsRequest{Service: "web", Tail: math.MaxInt64}), parts: []string{"tail", "9223372036854775807", "100000"}},
		{name: "logs ref empty", call: logs(&shoalpb.ServiceLogsRequest{}), parts: []string{"service", "missing"}},
	}
}

func clusterCases() []badCase {
	join := func(id, raft, addr string) func(context.Context, shoalpb.ControlClient) error {
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.JoinManager(ctx, &shoalpb.JoinManagerRequest{Id: id, RaftAddr: raft, Addr: addr})
			return err
		}
	}
	setMax := func(n uint64) func(context.Context, shoalpb.ControlClient) error {
		return func(ctx context.Context, cl shoalpb.ControlClient) error {
			_, err := cl.UpdateCluster(ctx, &shoalpb.UpdateClusterRequest{MaxReplicas: &n})
			return err
		}
	}
	const ok = "127.0.0.1:7000"
	return []badCase{
		{name: "join id empty", call: join("", ok, ok), parts: []string{"id", "missing"}},
		{name: "join id oversize", call: join(big(129), ok, ok), parts: []string{"id", "at most 128"}},
		{name: "join id malformed", call: join("m 1", ok, ok), parts: []string{"id", `"m 1"`, "white space"}},
		{name: "join raft_addr malformed", call: join("m9", "nowhere", ok), parts: []string{"raft_addr", `"nowhere"`, "host:port"}},
		{name: "join raft_addr port zero", call: join("m9", "127.0.0.1:0", ok), parts: []string{"raft_addr", "1 to 65535"}},
		{name: "join raft_addr port overflow", call: join("m9", "127.0.0.1:99999", ok), parts: []string{"raft_addr", "1 to 65535"}},
		{name: "join addr oversize", call: join("m9", ok, big(300)+":1"), parts: []string{"addr", "at most 256"}},
		{name: "join addr missing", call: join("m9", ok, ""), parts: []string{"addr", "missing"}},
		{name: "max-replicas overflow", call: setMax(math.MaxUint64), parts: []string{"max_replicas", "18446744073709551615", "100000"}},
		{name: "max-replicas below a service", call: setMax(10), parts: []string{"max_replicas", `"10"`, `"big" has 50 replicas`}, barrier: true},
	}
}
