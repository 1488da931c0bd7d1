package raftstore

import "context"

// LocalApplier applies commands straight to a State, without consensus, for
// unit tests of everything above Raft. Its indexes count from the state's
// current index.
type LocalApplier struct {
	state *State
}

// NewLocalApplier returns an Applier over s.
func NewLocalApplier(s *State) *LocalApplier { return &LocalApplier{state: s} }

// Apply applies cmd to the state. The command is used as a Raft entry would
// be: the state keeps copies, never the caller's values.
func (a *LocalApplier) Apply(ctx context.Context, cmd Command) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	index, value, err := a.state.apply(0, cmd)
	if err != nil {
		return Response{}, err
	}
	return Response{Index: index, Value: value}, nil
}
