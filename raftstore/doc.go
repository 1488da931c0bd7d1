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
package raftstore
