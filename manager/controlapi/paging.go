package controlapi

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"slices"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// maxPageSize bounds ListTasks' page_size: 10,000 tasks are about 7 MB,
// well inside the message limit.
const maxPageSize = 10000

// taskCursor is what a page token holds: the sort key of the last task
// listed. The next page starts after it in the list's order, so a task
// is never listed twice even when the state changes between pages.
type taskCursor struct {
	Service string    `json:"s"`
	Slot    uint64    `json:"l"`
	Created time.Time `json:"c"`
	ID      string    `json:"i"`
}

func (c taskCursor) compare(t *api.Task) int {
	return compareTaskKey(c, taskCursor{Service: t.ServiceName, Slot: t.Slot, Created: t.CreatedAt, ID: t.ID})
}

// compareTaskKey orders as raftstore's task lists do.
func compareTaskKey(a, b taskCursor) int {
	return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot),
		a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
}

// pageTasks cuts one page out of tasks (sorted) and returns the token of
// the next one ("" for the last page). size 0 returns every task.
func pageTasks(tasks []*api.Task, size uint32, token string) ([]*api.Task, string, error) {
	if size > maxPageSize {
		return nil, "", invalidf("page_size %d: at most %d", size, maxPageSize)
	}
	if token != "" {
		var c taskCursor
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || len(token) > 1024 {
			return nil, "", invalidf("page_token %.40q: not a token from ListTasks", token)
		}
		at, _ := slices.BinarySearchFunc(tasks, c, func(t *api.Task, c taskCursor) int { return -c.compare(t) })
		for at < len(tasks) && c.compare(tasks[at]) >= 0 {
			at++
		}
		tasks = tasks[at:]
	}
	if size == 0 || len(tasks) <= int(size) {
		return tasks, "", nil
	}
	page, last := tasks[:size], tasks[size-1]
	raw, err := json.Marshal(taskCursor{Service: last.ServiceName, Slot: last.Slot, Created: last.CreatedAt, ID: last.ID})
	if err != nil {
		return nil, "", err
	}
	return page, base64.RawURLEncoding.EncodeToString(raw), nil
}

// nameCursor is the page token of ListServices and ListNodes: the name
// (service name, node hostname) and id of the last object listed. Both
// lists are sorted by name, then id.
type nameCursor struct {
	Name string `json:"n"`
	ID   string `json:"i"`
}

func (c nameCursor) compare(name, id string) int {
	return cmp.Or(cmp.Compare(c.Name, name), cmp.Compare(c.ID, id))
}

// pageByName cuts one page out of items (sorted by key) as pageTasks does;
// method names the call in the error of a bad token.
func pageByName[T any](items []T, key func(T) (name, id string), size uint32, token, method string) ([]T, string, error) {
	if size > maxPageSize {
		return nil, "", invalidf("page_size %d: at most %d", size, maxPageSize)
	}
	if token != "" {
		var c nameCursor
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || len(token) > 1024 {
			return nil, "", invalidf("page_token %.40q: not a token from %s", token, method)
		}
		at, _ := slices.BinarySearchFunc(items, c, func(x T, c nameCursor) int { return -c.compare(key(x)) })
		for at < len(items) && c.compare(key(items[at])) >= 0 {
			at++
		}
		items = items[at:]
	}
	if size == 0 || len(items) <= int(size) {
		return items, "", nil
	}
	name, id := key(items[size-1])
	raw, err := json.Marshal(nameCursor{Name: name, ID: id})
	if err != nil {
		return nil, "", err
	}
	return items[:size], base64.RawURLEncoding.EncodeToString(raw), nil
}

func serviceKey(s *api.Service) (string, string) { return s.Spec.Name, s.ID }
func nodeKey(n *api.Node) (string, string)       { return n.Hostname, n.ID }
