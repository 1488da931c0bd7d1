package controlapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// TestPageByNameLargeLists: 10,000 nodes and 10,000 services come out
// whole through pages (of the largest size, and of a smaller one), each page under the message
// limit, none listed twice.
func TestPageByNameLargeLists(t *testing.T) {
	const n = 10000
	nodes := make([]*api.Node, n)
	svcs := make([]*api.Service, n)
	for i := range n {
		nodes[i] = &api.Node{ID: fmt.Sprintf("node%020d", i), Hostname: fmt.Sprintf("worker-%05d.rack-%02d.example.internal", i, i%40),
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3), "rack": fmt.Sprint(i % 40)}, Status: api.NodeReady, Availability: api.AvailabilityActive}
		svcs[i] = &api.Service{ID: fmt.Sprintf("svc%021d", i), Spec: api.ServiceSpec{Name: fmt.Sprintf("stack%03d_service%05d", i%100, i),
			Image: "registry.example.internal/team/app:1.2.3", Mode: api.ModeReplicated, Replicas: 3,
			Labels: map[string]string{"shoal.stack": fmt.Sprintf("stack%03d", i%100)}, Env: []string{"A=1", "B=2"}}}
	}
	// As the view lists them: by name, then id.
	slices.SortFunc(svcs, func(a, b *api.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	t.Run("nodes", func(t *testing.T) {
		for _, size := range []uint32{maxPageSize, 3000} {
			got := pageAll(t, size, nodes, nodeKey, func(page []*api.Node) proto.Message {
				out := &shoalpb.ListNodesResponse{NextPageToken: "x"}
				for _, x := range page {
					out.Nodes = append(out.Nodes, &shoalpb.NodeSummary{Node: shoalpb.FromNode(x), Tasks: 100, ManagerStatus: "reachable"})
				}
				return out
			})
			if got != n {
				t.Fatalf("page size %d: %d nodes listed, want %d", size, got, n)
			}
		}
	})
	t.Run("services", func(t *testing.T) {
		for _, size := range []uint32{maxPageSize, 3000} {
			got := pageAll(t, size, svcs, serviceKey, func(page []*api.Service) proto.Message {
				out := &shoalpb.ListServicesResponse{NextPageToken: "x"}
				for _, x := range page {
					out.Services = append(out.Services, &shoalpb.ServiceSummary{Service: shoalpb.FromService(x), Running: 3, Desired: 3})
				}
				return out
			})
			if got != n {
				t.Fatalf("page size %d: %d services listed, want %d", size, got, n)
			}
		}
	})
}

// pageAll pages through items with pages of size, checks each page's
// encoded size and order, and returns how many came out.
func pageAll[T any](t *testing.T, size uint32, items []T, key func(T) (string, string), msg func([]T) proto.Message) int {
	t.Helper()
	var token, lastName, lastID string
	total := 0
	for pages := 0; ; pages++ {
		if pages > len(items)/int(size)+1 {
			t.Fatalf("page size %d: more than %d pages", size, pages)
		}
		page, next, err := pageByName(items, key, size, token, "List")
		if err != nil {
			t.Fatal(err)
		}
		if size := proto.Size(msg(page)); size > shoalpb.MaxMessageBytes {
			t.Fatalf("page %d: %d bytes, over the limit of %d", pages, size, shoalpb.MaxMessageBytes)
		}
		for _, x := range page {
			name, id := key(x)
			if total > 0 && (nameCursor{lastName, lastID}).compare(name, id) >= 0 {
				t.Fatalf("%s/%s listed after %s/%s", name, id, lastName, lastID)
			}
			lastName, lastID = name, id
			total++
		}
		if next == "" {
			return total
		}
		token = next
	}
}
