package raftstore

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/go-memdb"
	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore/commandpb"
	"google.golang.org/protobuf/proto"
)

// snapshotFormat is the version of the record stream.
const snapshotFormat = 1

// maxRecordSize bounds one record, so that a corrupt length cannot make
// Restore allocate without limit.
const maxRecordSize = 64 << 20

// snapshotHeader is the first record: what follows and at which index.
type snapshotHeader struct {
	Format   int    `json:"format"`
	Index    uint64 `json:"index"`
	Managers int    `json:"managers"`
	Nodes    int    `json:"nodes"`
	Services int    `json:"services"`
	Tasks    int    `json:"tasks"`
	Requests int    `json:"requests,omitempty"`
	// Specs counts the spec versions. Snapshots taken before tasks referred
	// to versions have none (see upgradeSpecs).
	Specs int `json:"specs,omitempty"`
	// Revoked counts the revoked node IDs.
	Revoked int `json:"revoked,omitempty"`
	// Networks counts the network records.
	Networks int `json:"networks,omitempty"`
	// Secrets counts the secret and config records.
	Secrets int `json:"secrets,omitempty"`
}

// WriteSnapshot writes the view as a stream of typed records: a header,
// then one record per object (cluster, managers, nodes, services, spec
// versions, tasks, remembered requests oldest first), each a varint length
// and a protobuf SnapshotRecord with a JSON payload.
func (v *View) WriteSnapshot(w io.Writer) error {
	managers, nodes, services := v.Managers(), v.Nodes(), v.Services()
	specs := v.serviceSpecs()
	tasks := collect[*api.Task](v.get(tableTasks, "id"))
	requests := v.requests()
	revoked := v.Revocations()
	networks := v.Networks()
	secrets := append(v.Secrets(api.KindSecret), v.Secrets(api.KindConfig)...)
	bw := bufio.NewWriterSize(w, 64<<10)
	rw := recordWriter{w: bw}
	rw.write(commandpb.SnapshotRecordType_RECORD_HEADER, snapshotHeader{
		Format: snapshotFormat, Index: v.index,
		Managers: len(managers), Nodes: len(nodes), Services: len(services), Tasks: len(tasks),
		Requests: len(requests),
		Specs:    len(specs),
		Revoked:  len(revoked),
		Networks: len(networks),
		Secrets:  len(secrets),
	})
	if c, ok := v.first(tableCluster, "id", clusterKey).(*api.ClusterInfo); ok {
		rw.write(commandpb.SnapshotRecordType_RECORD_CLUSTER, c)
	}
	if c, ok := v.first(tableCA, "id", caKey).(*api.ClusterCA); ok {
		rw.write(commandpb.SnapshotRecordType_RECORD_CA, c)
	}
	if r, ok := v.first(tableGossipKeys, "id", gossipKeysKey).(*api.GossipKeyring); ok {
		rw.write(commandpb.SnapshotRecordType_RECORD_GOSSIP_KEYRING, r)
	}
	if a, ok := v.first(tableAutolock, "id", autolockKey).(*api.Autolock); ok {
		rw.write(commandpb.SnapshotRecordType_RECORD_AUTOLOCK, a)
	}
	for i := range managers {
		rw.write(commandpb.SnapshotRecordType_RECORD_MANAGER, &managers[i])
	}
	for _, n := range nodes {
		rw.write(commandpb.SnapshotRecordType_RECORD_NODE, n)
	}
	for _, s := range services {
		rw.write(commandpb.SnapshotRecordType_RECORD_SERVICE, s)
	}
	for _, s := range specs {
		rw.write(commandpb.SnapshotRecordType_RECORD_SERVICE_SPEC, s)
	}
	for _, n := range networks {
		rw.write(commandpb.SnapshotRecordType_RECORD_NETWORK, n)
	}
	for _, s := range secrets {
		rw.write(commandpb.SnapshotRecordType_RECORD_SECRET, s)
	}
	for _, t := range tasks {
		rw.write(commandpb.SnapshotRecordType_RECORD_TASK, t)
	}
	for _, r := range requests {
		rw.write(commandpb.SnapshotRecordType_RECORD_REQUEST, r)
	}
	for i := range revoked {
		rw.write(commandpb.SnapshotRecordType_RECORD_REVOKED, &revoked[i])
	}
	if rw.err != nil {
		return fmt.Errorf("write snapshot: %w", rw.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

type recordWriter struct {
	w   *bufio.Writer
	buf []byte
	err error
}

func (rw *recordWriter) write(typ commandpb.SnapshotRecordType, obj any) {
	if rw.err != nil {
		return
	}
	payload, err := json.Marshal(obj)
	if err != nil {
		rw.err = fmt.Errorf("%s: %w", typ, err)
		return
	}
	rec := &commandpb.SnapshotRecord{Type: typ, Encoding: commandpb.Encoding_ENCODING_JSON, Payload: payload}
	rw.buf, err = proto.MarshalOptions{}.MarshalAppend(rw.buf[:0], rec)
	if err != nil {
		rw.err = fmt.Errorf("%s: %w", typ, err)
		return
	}
	var n [binary.MaxVarintLen64]byte
	if _, err := rw.w.Write(n[:binary.PutUvarint(n[:], uint64(len(rw.buf)))]); err != nil {
		rw.err = err
		return
	}
	_, rw.err = rw.w.Write(rw.buf)
}

// readSnapshot builds a fresh database from a record stream.
func readSnapshot(r io.Reader) (*memdb.MemDB, uint64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var rec commandpb.SnapshotRecord
	if err := readRecord(br, &rec); err != nil {
		return nil, 0, fmt.Errorf("snapshot header: %w", err)
	}
	var hdr snapshotHeader
	if rec.Type != commandpb.SnapshotRecordType_RECORD_HEADER {
		return nil, 0, fmt.Errorf("snapshot: first record is %s, want a header", rec.Type)
	}
	if err := json.Unmarshal(rec.Payload, &hdr); err != nil {
		return nil, 0, fmt.Errorf("snapshot header: %w", err)
	}
	if hdr.Format != snapshotFormat {
		return nil, 0, fmt.Errorf("snapshot format %d: this version reads %d", hdr.Format, snapshotFormat)
	}
	db := newDB()
	txn := db.Txn(true)
	defer txn.Abort()
	counts := map[commandpb.SnapshotRecordType]int{}
	for n := 1; ; n++ {
		err := readRecord(br, &rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot record %d: %w", n, err)
		}
		if err := insertRecord(txn, &rec); err != nil {
			return nil, 0, fmt.Errorf("snapshot record %d: %w", n, err)
		}
		counts[rec.Type]++
	}
	want := map[commandpb.SnapshotRecordType]int{
		commandpb.SnapshotRecordType_RECORD_MANAGER:      hdr.Managers,
		commandpb.SnapshotRecordType_RECORD_NODE:         hdr.Nodes,
		commandpb.SnapshotRecordType_RECORD_SERVICE:      hdr.Services,
		commandpb.SnapshotRecordType_RECORD_TASK:         hdr.Tasks,
		commandpb.SnapshotRecordType_RECORD_REQUEST:      hdr.Requests,
		commandpb.SnapshotRecordType_RECORD_SERVICE_SPEC: hdr.Specs,
		commandpb.SnapshotRecordType_RECORD_REVOKED:      hdr.Revoked,
		commandpb.SnapshotRecordType_RECORD_NETWORK:      hdr.Networks,
		commandpb.SnapshotRecordType_RECORD_SECRET:       hdr.Secrets,
	}
	for typ, n := range want {
		if counts[typ] != n {
			return nil, 0, fmt.Errorf("snapshot: %d %s records, header says %d (truncated?)", counts[typ], typ, n)
		}
	}
	if hdr.Specs == 0 {
		if err := upgradeSpecs(txn); err != nil {
			return nil, 0, fmt.Errorf("snapshot: %w", err)
		}
	}
	txn.Commit()
	return db, hdr.Index, nil
}

// readRecord reads one length-prefixed record; io.EOF only at a clean end.
func readRecord(br *bufio.Reader, rec *commandpb.SnapshotRecord) error {
	size, err := binary.ReadUvarint(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return err
	}
	if size > maxRecordSize {
		return fmt.Errorf("record of %d bytes: larger than %d", size, maxRecordSize)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(br, buf); err != nil {
		return fmt.Errorf("record of %d bytes: %w", size, noEOF(err))
	}
	return proto.Unmarshal(buf, rec)
}

// noEOF turns an end of stream inside a record into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func insertRecord(txn *memdb.Txn, rec *commandpb.SnapshotRecord) error {
	if rec.Encoding != commandpb.Encoding_ENCODING_JSON {
		return fmt.Errorf("%s: encoding %s: not supported", rec.Type, rec.Encoding)
	}
	var (
		obj   any
		table string
		id    string
		err   error
	)
	switch rec.Type {
	case commandpb.SnapshotRecordType_RECORD_CLUSTER:
		table = tableCluster
		obj, id, err = decodeRecord(rec.Payload, func(c *api.ClusterInfo) string { return c.ID })
	case commandpb.SnapshotRecordType_RECORD_CA:
		table = tableCA
		obj, id, err = decodeRecord(rec.Payload, func(*api.ClusterCA) string { return caKey })
	case commandpb.SnapshotRecordType_RECORD_MANAGER:
		table = tableManagers
		obj, id, err = decodeRecord(rec.Payload, func(m *api.Manager) string { return m.ID })
	case commandpb.SnapshotRecordType_RECORD_NODE:
		table = tableNodes
		obj, id, err = decodeRecord(rec.Payload, func(n *api.Node) string { return n.ID })
	case commandpb.SnapshotRecordType_RECORD_SERVICE:
		table = tableServices
		obj, id, err = decodeRecord(rec.Payload, func(s *api.Service) string { return s.ID })
	case commandpb.SnapshotRecordType_RECORD_TASK:
		table = tableTasks
		obj, id, err = decodeRecord(rec.Payload, func(t *api.Task) string { return t.ID })
	case commandpb.SnapshotRecordType_RECORD_REQUEST:
		table = tableRequests
		obj, id, err = decodeRecord(rec.Payload, func(r *appliedRequest) string { return r.ID })
	case commandpb.SnapshotRecordType_RECORD_SERVICE_SPEC:
		table = tableSpecs
		obj, id, err = decodeRecord(rec.Payload, func(r *specRecord) string {
			if r.ServiceID == "" || r.Spec == nil {
				return ""
			}
			return r.key()
		})
	case commandpb.SnapshotRecordType_RECORD_REVOKED:
		table = tableRevoked
		obj, id, err = decodeRecord(rec.Payload, func(r *Revocation) string { return r.NodeID })
	case commandpb.SnapshotRecordType_RECORD_NETWORK:
		table = tableNetworks
		obj, id, err = decodeRecord(rec.Payload, func(n *api.Network) string { return n.ID })
	case commandpb.SnapshotRecordType_RECORD_SECRET:
		var s *api.Secret
		obj, id, err = decodeRecord(rec.Payload, func(x *api.Secret) string { s = x; return x.ID })
		if err == nil {
			if table = secretTable(s.Kind); table == "" {
				return fmt.Errorf("%s %q: kind %q: unknown", rec.Type, id, s.Kind)
			}
		}
	case commandpb.SnapshotRecordType_RECORD_GOSSIP_KEYRING:
		table = tableGossipKeys
		obj, id, err = decodeRecord(rec.Payload, func(*api.GossipKeyring) string { return gossipKeysKey })
	case commandpb.SnapshotRecordType_RECORD_AUTOLOCK:
		table = tableAutolock
		obj, id, err = decodeRecord(rec.Payload, func(*api.Autolock) string { return autolockKey })
	default:
		return fmt.Errorf("record type %s: unexpected", rec.Type)
	}
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", rec.Type, err)
	case id == "":
		return fmt.Errorf("%s: id: empty", rec.Type)
	}
	if err := txn.Insert(table, obj); err != nil {
		return fmt.Errorf("%s %q: %w", rec.Type, id, err)
	}
	return nil
}

// decodeRecord decodes one object and returns it with its id.
func decodeRecord[T any](p []byte, id func(*T) string) (any, string, error) {
	obj := new(T)
	if err := json.Unmarshal(p, obj); err != nil {
		return nil, "", err
	}
	return obj, id(obj), nil
}

// upgradeSpecs fills the spec table of a snapshot taken before tasks
// referred to spec versions: each service's current and previous spec, and
// the copy each task carried (the first copy of a version wins; they were
// equal). The tasks are stored without their copies.
func upgradeSpecs(txn *memdb.Txn) error {
	put := func(serviceID string, version uint64, spec *api.ServiceSpec) error {
		key := specKey(serviceID, version)
		if cur, err := txn.First(tableSpecs, "id", key); err != nil || cur != nil {
			return err
		}
		return txn.Insert(tableSpecs, &specRecord{ServiceID: serviceID, Version: version, Spec: spec})
	}
	it, err := txn.Get(tableServices, "id")
	if err != nil {
		return err
	}
	for _, s := range collect[*api.Service](it) {
		if err := put(s.ID, s.SpecVersion, &s.Spec); err != nil {
			return fmt.Errorf("service %q: %w", s.ID, err)
		}
		if s.PreviousSpec != nil && s.SpecVersion > 1 {
			if err := put(s.ID, s.SpecVersion-1, s.PreviousSpec); err != nil {
				return fmt.Errorf("service %q: %w", s.ID, err)
			}
		}
	}
	if it, err = txn.Get(tableTasks, "id"); err != nil {
		return err
	}
	for _, t := range collect[*api.Task](it) {
		if !t.HasSpec() {
			continue
		}
		if err := put(t.ServiceID, t.SpecVersion, t.Spec); err != nil {
			return fmt.Errorf("task %q: %w", t.ID, err)
		}
		t.Spec = nil // decoded for this restore: not shared yet
		if err := txn.Insert(tableTasks, t); err != nil {
			return fmt.Errorf("task %q: %w", t.ID, err)
		}
	}
	return nil
}
