// Package raftstore keeps shoal's desired and observed state: an indexed
// in-memory State (go-memdb) changed only by Commands, which on a cluster
// go through hashicorp/raft (Node) and in unit tests through a LocalApplier.
//
// The public surface, used by the manager:
//
//	State      — read views (Read), change notification (Changed), event feed (Subscribe)
//	Command    — one typed change; Apply on the FSM is deterministic
//	Applier    — anything that commits Commands: *Node (Raft) or *LocalApplier
//	Node       — a Raft member: Open, Apply, leadership, membership, stats
//
// A log entry is a commandpb.Envelope (EncodeCommand/DecodeCommand): the
// command type and the command's JSON. The FSM applies consecutive entries
// in one memdb transaction; every handler checks before it writes, so a
// rejected command (an error wrapping ErrNotFound, ErrAlreadyExists,
// ErrConflict or ErrInvalid, naming the value) changes nothing. Values in
// the store are never mutated after insert: a change stores a modified
// copy, so views share them without locks.
//
// A Request wraps a command sent for a client request with its request ID
// (the envelope's request_id): the FSM remembers the last RequestMemory
// requests that succeeded and answers a repeated ID with the first result,
// so a write whose commit was uncertain (ErrCommitUncertain) can be sent
// again.
//
// A snapshot is a header and one length-prefixed commandpb.SnapshotRecord
// per object (cluster, managers, nodes, services, tasks, remembered
// requests); Restore builds a fresh database and swaps it in.
//
// On disk a member keeps, under its data dir: member-id, raft.db (the
// raft-boltdb log and stable store; a wal/ directory left by an earlier
// version is migrated into it once) and snapshots/ (the two latest).
package raftstore
