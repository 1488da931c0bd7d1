package shoalpb

import "github.com/shoal-sched/shoal/api"

func fromProbes(log []api.ProbeResult) []*ProbeResult {
	if len(log) == 0 {
		return nil
	}
	out := make([]*ProbeResult, len(log))
	for i, r := range log {
		out[i] = &ProbeResult{Start: ts(r.Start), End: ts(r.End), ExitCode: int32(r.ExitCode), Output: r.Output}
	}
	return out
}

func toProbes(log []*ProbeResult) []api.ProbeResult {
	if len(log) == 0 {
		return nil
	}
	out := make([]api.ProbeResult, len(log))
	for i, r := range log {
		out[i] = api.ProbeResult{Start: fromTS(r.GetStart()), End: fromTS(r.GetEnd()), ExitCode: int(r.GetExitCode()), Output: r.GetOutput()}
	}
	return out
}
