package raftstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/shoal-sched/shoal/api"
)

// Table names of the memdb schema.
const (
	tableServices = "services"
	tableTasks    = "tasks"
	tableNodes    = "nodes"
	tableManagers = "managers"
	tableCluster  = "cluster"
	tableSpecs    = "specs"
	tableRevoked  = "revoked"
)

// clusterKey is the one row of the cluster table.
const clusterKey = "cluster"

// strIndex indexes an object by one string field. A typed accessor is used
// instead of memdb's reflection-based StringFieldIndex: the fields are nested
// (Spec.Name) and the FSM indexes every task it writes, so speed matters.
type strIndex func(obj any) string

func (f strIndex) FromObject(obj any) (bool, []byte, error) {
	s := f(obj)
	if s == "" {
		return false, nil, nil
	}
	return true, append([]byte(s), 0), nil
}

func (f strIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("index wants one argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("index argument %v: want a string", args[0])
	}
	return append([]byte(s), 0), nil
}

// foldIndex is a strIndex whose keys (and look-ups) ignore case.
type foldIndex func(obj any) string

func (f foldIndex) FromObject(obj any) (bool, []byte, error) {
	return strIndex(func(o any) string { return foldKey(f(o)) }).FromObject(obj)
}

// foldKey is the key a foldIndex files s under.
func foldKey(s string) string { return strings.ToLower(s) }

func (f foldIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			args = []any{foldKey(s)}
		}
	}
	return strIndex(nil).FromArgs(args...)
}

func idIndex(f strIndex) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: "id", Unique: true, Indexer: f}
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableServices: {Name: tableServices, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(o any) string { return o.(*api.Service).ID }),
			// Names are unique regardless of case, as in swarmkit: "Web"
			// and "web" would be one name to DNS and to people.
			"name": {Name: "name", Unique: true,
				Indexer: foldIndex(func(o any) string { return o.(*api.Service).Spec.Name })},
			// Sparse indexes of the few services that passes run after
			// every write must find without reading them all: global ones
			// (a node's change concerns each of them) and those that
			// publish a port (the allocator's work).
			"global": {Name: "global", AllowMissing: true,
				Indexer: strIndex(func(o any) string { return flagKey(o.(*api.Service).Spec.Mode == api.ModeGlobal) })},
			"publishes": {Name: "publishes", AllowMissing: true,
				Indexer: strIndex(func(o any) string { return flagKey(len(o.(*api.Service).Spec.Endpoint.Ports) > 0) })},
		}},
		tableTasks: {Name: tableTasks, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(o any) string { return o.(*api.Task).ID }),
			"service_id": {Name: "service_id",
				Indexer: strIndex(func(o any) string { return o.(*api.Task).ServiceID })},
			"node_id": {Name: "node_id", AllowMissing: true,
				Indexer: strIndex(func(o any) string { return o.(*api.Task).NodeID })},
			// Tasks desired running (nearly all of them) are left out of
			// this index: what readers look up by desired state is the
			// exceptions (shutdown, remove), and leaving them out saves an
			// index write on every status change and assignment.
			"desired_state": {Name: "desired_state", AllowMissing: true,
				Indexer: strIndex(func(o any) string { return desiredKey(o.(*api.Task).DesiredState) })},
			// The tasks waiting for a node, so that a scheduling pass
			// reads those and not every task; a task leaves the index when
			// it is assigned or told to stop.
			"awaiting_node": {Name: "awaiting_node", AllowMissing: true,
				Indexer: strIndex(func(o any) string { return awaitingKey(o.(*api.Task)) })},
		}},
		tableNodes: {Name: tableNodes, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(o any) string { return o.(*api.Node).ID }),
		}},
		tableManagers: {Name: tableManagers, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(o any) string { return o.(*api.Manager).ID }),
		}},
		tableCluster: {Name: tableCluster, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(any) string { return clusterKey }),
		}},
		tableRequests: requestsTable(),
		tableRevoked:  revokedTable(),
		tableCA: {Name: tableCA, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(any) string { return caKey }),
		}},
		tableNetworks: {Name: tableNetworks, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(o any) string { return o.(*api.Network).ID }),
			"name": {Name: "name", Unique: true,
				Indexer: strIndex(func(o any) string { return o.(*api.Network).Spec.Name })},
		}},
		tableSecrets: secretsTable(tableSecrets),
		tableConfigs: secretsTable(tableConfigs),
		tableGossipKeys: {Name: tableGossipKeys, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(any) string { return gossipKeysKey }),
		}},
		tableAutolock: {Name: tableAutolock, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(any) string { return autolockKey }),
		}},
		tableSpecs: {Name: tableSpecs, Indexes: map[string]*memdb.IndexSchema{
			"id": idIndex(func(o any) string { return o.(*specRecord).key() }),
			"service_id": {Name: "service_id",
				Indexer: strIndex(func(o any) string { return o.(*specRecord).ServiceID })},
		}},
	}}
}

// secretsTable is the schema of the secrets or the configs table. Names
// are unique as given (Docker's secret names are case-sensitive).
func secretsTable(name string) *memdb.TableSchema {
	return &memdb.TableSchema{Name: name, Indexes: map[string]*memdb.IndexSchema{
		"id": idIndex(func(o any) string { return o.(*api.Secret).ID }),
		"name": {Name: "name", Unique: true,
			Indexer: strIndex(func(o any) string { return o.(*api.Secret).Spec.Name })},
	}}
}

// objectID returns the primary key of a stored object.
func objectID(obj any) string {
	switch o := obj.(type) {
	case *api.Service:
		return o.ID
	case *api.Task:
		return o.ID
	case *api.Node:
		return o.ID
	case *api.Manager:
		return o.ID
	case *api.ClusterInfo:
		return clusterKey
	case *api.ClusterCA:
		return caKey
	case *appliedRequest:
		return o.ID
	case *specRecord:
		return o.key()
	case *Revocation:
		return o.NodeID
	case *api.Network:
		return o.ID
	case *api.Secret:
		return o.ID
	case *api.GossipKeyring:
		return gossipKeysKey
	case *api.Autolock:
		return autolockKey
	default:
		panic(fmt.Sprintf("raftstore: no table holds %T", obj))
	}
}

// desiredKey is the desired_state index key; "" (not indexed) for running.
func desiredKey(s api.TaskState) string {
	if s == api.TaskRunning {
		return ""
	}
	return strconv.Itoa(int(s))
}

// flagIndexKey is the one key of a sparse index of a yes-or-no property
// (awaiting_node, global, publishes).
const flagIndexKey = "1"

// flagKey is the key of a sparse index of a yes-or-no property: "" (not
// indexed) for no.
func flagKey(yes bool) string {
	if yes {
		return flagIndexKey
	}
	return ""
}

// awaitingKey is the awaiting_node index key: "" (not indexed) for a task
// that does not wait for a node.
func awaitingKey(t *api.Task) string { return flagKey(t.AwaitsNode()) }

func newDB() *memdb.MemDB {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		// The schema is a constant of this package: an error is a bug.
		panic(fmt.Sprintf("raftstore: schema: %v", err))
	}
	// A memdb snapshot is a full database that does not track mutations
	// for watch channels. The state signals change through Changed and
	// Subscribe, never through memdb watches, and the tracking (one
	// channel per changed radix node, then a tree walk once a transaction
	// touches more than 8192 of them) is most of the cost of a large
	// AssignTasks.
	return db.Snapshot()
}
