package raftstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/shoal-sched/shoal/raftstore/commandpb"
	"google.golang.org/protobuf/proto"
)

// maxBatchDepth bounds how deep batches may nest in one entry.
const maxBatchDepth = 8

// MaxEntryBytes caps one encoded log entry. It keeps every entry readable by
// any log store (raft-wal, used before raft.db, refused entries over 64 MiB)
// and keeps any one entry's replication and
// fsync short enough not to stall heartbeats. Writers of many objects
// (the orchestrators) split their work into entries far below it.
const MaxEntryBytes = 8 << 20

// ErrEntryTooLarge: a command encodes to more than MaxEntryBytes. Nothing
// was proposed; the caller splits the command or shrinks what it carries.
var ErrEntryTooLarge = errors.New("log entry too large")

// EncodeCommand writes cmd as a log entry: a protobuf envelope naming the
// command type, with the command's JSON as payload. An entry over
// MaxEntryBytes is refused with ErrEntryTooLarge.
func EncodeCommand(cmd Command) ([]byte, error) {
	env, err := envelope(cmd, 0)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", env.Type, err)
	}
	if len(b) > MaxEntryBytes {
		return nil, fmt.Errorf("command %s encodes to %d bytes, over the %d-byte limit of one log entry: %w",
			env.Type, len(b), MaxEntryBytes, ErrEntryTooLarge)
	}
	return b, nil
}

func envelope(cmd Command, depth int) (*commandpb.Envelope, error) {
	cmd = deref(cmd)
	if cmd == nil {
		return nil, fmt.Errorf("command: nil: %w", ErrInvalid)
	}
	if r, ok := cmd.(Request); ok {
		return requestEnvelope(r, depth)
	}
	typ := cmd.commandType()
	env := &commandpb.Envelope{Type: commandpb.CommandType(typ), Encoding: commandpb.Encoding_ENCODING_JSON}
	if b, ok := cmd.(Batch); ok {
		if depth >= maxBatchDepth {
			return nil, fmt.Errorf("batch: nested more than %d deep: %w", maxBatchDepth, ErrInvalid)
		}
		env.Payload = nil
		for i, sub := range b.Commands {
			e, err := envelope(sub, depth+1)
			if err != nil {
				return nil, fmt.Errorf("batch command %d: %w", i, err)
			}
			env.Batch = append(env.Batch, e)
		}
		return env, nil
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", cmd, err)
	}
	env.Payload = payload
	return env, nil
}

// deref turns a pointer to a command struct into the struct, so that
// callers may pass either.
func deref(cmd Command) Command {
	if cmd == nil {
		return nil
	}
	v := reflect.ValueOf(cmd)
	if v.Kind() != reflect.Pointer {
		return cmd
	}
	if v.IsNil() {
		return nil
	}
	c, _ := v.Elem().Interface().(Command)
	return c
}

// DecodeCommand reads a log entry written by EncodeCommand.
func DecodeCommand(data []byte) (Command, error) {
	var env commandpb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("command envelope: %w", err)
	}
	return fromEnvelope(&env, 0)
}

func fromEnvelope(env *commandpb.Envelope, depth int) (Command, error) {
	if env.RequestId != "" {
		return requestFromEnvelope(env, depth)
	}
	typ := CommandType(env.Type)
	if typ == CmdBatch {
		if depth >= maxBatchDepth {
			return nil, fmt.Errorf("batch: nested more than %d deep", maxBatchDepth)
		}
		b := Batch{Commands: make([]Command, 0, len(env.Batch))}
		for i, e := range env.Batch {
			c, err := fromEnvelope(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("batch command %d: %w", i, err)
			}
			b.Commands = append(b.Commands, c)
		}
		return b, nil
	}
	if env.Encoding != commandpb.Encoding_ENCODING_JSON {
		return nil, fmt.Errorf("command %s: encoding %s: not supported", env.Type, env.Encoding)
	}
	cmd, err := decodePayload(typ, env.Payload)
	if err != nil {
		return nil, fmt.Errorf("command %s: %w", env.Type, err)
	}
	return cmd, nil
}

func decodePayload(typ CommandType, p []byte) (Command, error) {
	switch typ {
	case CmdCreateService:
		return decodeJSON[CreateService](p)
	case CmdUpdateService:
		return decodeJSON[UpdateService](p)
	case CmdRemoveService:
		return decodeJSON[RemoveService](p)
	case CmdUpsertNode:
		return decodeJSON[UpsertNode](p)
	case CmdUpdateNode:
		return decodeJSON[UpdateNode](p)
	case CmdSetNodeStatus:
		return decodeJSON[SetNodeStatus](p)
	case CmdRemoveNode:
		return decodeJSON[RemoveNode](p)
	case CmdWriteTasks:
		return decodeJSON[WriteTasks](p)
	case CmdAssignTasks:
		return decodeJSON[AssignTasks](p)
	case CmdUpdateTaskStatus:
		return decodeJSON[UpdateTaskStatus](p)
	case CmdSetCluster:
		return decodeJSON[SetCluster](p)
	case CmdUpsertManager:
		return decodeJSON[UpsertManager](p)
	case CmdRemoveManager:
		return decodeJSON[RemoveManager](p)
	case CmdSetCA:
		return decodeJSON[SetCA](p)
	case CmdCreateSecret:
		return decodeJSON[CreateSecret](p)
	case CmdUpdateSecret:
		return decodeJSON[UpdateSecret](p)
	case CmdRemoveSecret:
		return decodeJSON[RemoveSecret](p)
	case CmdCreateNetwork:
		return decodeJSON[CreateNetwork](p)
	case CmdRemoveNetwork:
		return decodeJSON[RemoveNetwork](p)
	case CmdAllocateNetworks:
		return decodeJSON[AllocateNetworks](p)
	case CmdSetGossipKeys:
		return decodeJSON[SetGossipKeys](p)
	case CmdSetAutolock:
		return decodeJSON[SetAutolock](p)
	default:
		if c, ok, err := decodeRolloutCommand(typ, p); ok {
			return c, err
		}
		return nil, fmt.Errorf("unknown command type %d", int32(typ))
	}
}

func decodeJSON[T Command](p []byte) (Command, error) {
	var c T
	if err := json.Unmarshal(p, &c); err != nil {
		return nil, err
	}
	return c, nil
}
