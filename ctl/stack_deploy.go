package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/stack"
)

// deployFlags are the options of stack deploy.
type deployFlags struct {
	files    []string
	profiles []string
	prune    bool
	dryRun   bool
	strict   bool
	// withRegistryAuth sends the caller's registry credential of each
	// service's image along with its spec.
	withRegistryAuth bool
	wait             waitFlags
}

func newStackDeployCommand(g *globals) *cobra.Command {
	f := &deployFlags{}
	cmd := &cobra.Command{
		Use:     "deploy -c FILE [-c FILE...] [OPTIONS] STACK",
		Aliases: []string{"up"},
		Short:   "Create or update a stack's services from compose files",
		Long: `Read the compose files (merged in order, with ${VAR} interpolation from the
environment and the .env file next to the first file, and profiles), then
create each service as STACK_SERVICE in depends_on order, update the ones
whose spec changed, leave the others alone, and wait until they converge
(or --detach). Services of the stack that are no longer in the files are
removed only with --prune.

Compose keys shoal does not support yet are named in a warning each
(errors with --strict).`,
		Example: `  shoalctl stack deploy -c compose.yaml shop
  shoalctl stack deploy -c compose.yaml -c compose.prod.yaml --prune shop
  shoalctl stack deploy -c compose.yaml --dry-run shop
  TAG=1.37 shoalctl stack deploy -c compose.yaml --profile debug --detach shop`,
		Args: exactlyOne("STACK"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.deployStack(cmd, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "compose-file", "c", nil, "compose file (repeatable; later files override earlier ones)")
	fl.StringArrayVar(&f.profiles, "profile", nil, "enable a compose profile (repeatable; default: COMPOSE_PROFILES)")
	fl.BoolVar(&f.prune, "prune", false, "remove the stack's services that are no longer in the files")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what the deploy would change and where tasks would go; change nothing")
	fl.BoolVar(&f.strict, "strict", false, "refuse files that use compose keys shoal does not support")
	fl.BoolVar(&f.withRegistryAuth, "with-registry-auth", false,
		"send this machine's docker registry credentials (~/.docker/config.json) for each service's image to the agents that run it")
	f.wait.register(cmd)
	g.registerQuiet(cmd)
	return cmd
}

// Deploy step actions.
const (
	stepCreate    = "create"
	stepUpdate    = "update"
	stepUnchanged = "unchanged"
	stepRemove    = "remove"
	stepKeep      = "keep" // not in the files, kept without --prune
)

// deployStep is what a deploy does to one service (and its JSON in the
// output of stack deploy, see docs/cli-json.md).
type deployStep struct {
	Service string    `json:"service"`
	Action  string    `json:"action"`
	Changes []string  `json:"changes,omitempty"`
	ID      string    `json:"id,omitempty"`
	Index   string    `json:"index,omitempty"`
	Plan    *planJSON `json:"plan,omitempty"`
	spec    *api.ServiceSpec
	current *shoalpb.Service
	version uint64                // the spec version the step wrote
	index   uint64                // the Raft index of that write
	auth    *shoalpb.RegistryAuth // --with-registry-auth: the credential of the image's registry
}

// planJSON carries a dry run's Plan in the stack deploy JSON, in the same
// protojson shape as service create --dry-run prints it.
type planJSON struct{ plan *shoalpb.Plan }

func (p *planJSON) MarshalJSON() ([]byte, error) { return jsonOptions.Marshal(p.plan) }

// deployResult is the JSON of stack deploy.
type deployResult struct {
	Stack    string        `json:"stack"`
	DryRun   bool          `json:"dry_run"`
	Services []*deployStep `json:"services"`
	Warnings []string      `json:"warnings"`
}

func (g *globals) deployStack(cmd *cobra.Command, f *deployFlags, name string) error {
	if len(f.files) == 0 {
		return errors.New("no compose file: give one or more with -c FILE")
	}
	st, err := stack.Load(cmd.Context(), stack.Options{
		Name: name, Files: f.files, Env: g.app.environ(), Profiles: f.profiles, Strict: f.strict,
	})
	if err != nil {
		return err
	}
	res := &deployResult{Stack: name, DryRun: f.dryRun, Warnings: []string{}}
	for _, w := range st.Warnings {
		res.Warnings = append(res.Warnings, w.String())
		fmt.Fprintf(g.app.Err, "Warning: %s\n", w)
	}
	waits := !f.dryRun && !f.wait.detach
	g.prepareWait(cmd, waits)
	return g.withClient(cmd, func(ctx context.Context, c *client) error {
		all, err := listServices(ctx, c, false)
		if err != nil {
			return err
		}
		steps, err := planDeploy(st, all, f.prune)
		if err != nil {
			return err
		}
		res.Services = steps
		if f.withRegistryAuth {
			if err := g.addRegistryAuth(steps); err != nil {
				return err
			}
		}
		if err := g.ensureStackNetworks(ctx, c, st, f.dryRun); err != nil {
			return err
		}
		if err := g.ensureStackSecrets(ctx, c, st, f.dryRun); err != nil {
			return err
		}
		if f.dryRun {
			return g.dryRunDeploy(ctx, c, res)
		}
		if err := g.applyDeploy(ctx, c, res); err != nil {
			return err
		}
		if !waits {
			return nil
		}
		var ids []string
		var index uint64
		versions := map[string]uint64{}
		for _, s := range steps {
			if s.Action == stepCreate || s.Action == stepUpdate {
				ids = append(ids, s.ID)
				versions[s.ID] = s.version
				index = max(index, s.index)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		return g.waitServicesAt(ctx, c, ids, versions, index, "see shoalctl stack ps "+name)
	})
}

// planDeploy compares the stack with the services there are. It refuses,
// before anything is written, a name taken by a service outside the
// stack and a change of mode (which a service cannot make).
func planDeploy(st *stack.Stack, all []*shoalpb.ServiceSummary, prune bool) ([]*deployStep, error) {
	byName := map[string]*shoalpb.Service{}
	for _, s := range all {
		byName[s.GetService().GetSpec().GetName()] = s.GetService()
	}
	var steps []*deployStep
	var errs []error
	inFiles := map[string]bool{}
	for _, spec := range st.Services {
		inFiles[spec.Name] = true
		step := &deployStep{Service: spec.Name, spec: spec}
		cur, exists := byName[spec.Name]
		switch {
		case !exists:
			step.Action = stepCreate
		case cur.GetSpec().GetLabels()[api.LabelStack] != st.Name:
			errs = append(errs, fmt.Errorf("service %q already exists and is not part of stack %q (its label %s is %q); remove or rename it first",
				spec.Name, st.Name, api.LabelStack, cur.GetSpec().GetLabels()[api.LabelStack]))
			continue
		case cur.GetSpec().GetMode() != string(spec.Mode):
			errs = append(errs, fmt.Errorf("service %q: deploy.mode changed from %s to %s, and a service's mode cannot change; remove it first (shoalctl service rm %s)",
				spec.Name, cur.GetSpec().GetMode(), spec.Mode, spec.Name))
			continue
		default:
			step.current, step.ID = cur, cur.GetId()
			keepDigest(cur.GetSpec(), spec)
			step.Changes = specChanges(shoalpb.ToServiceSpec(cur.GetSpec()), spec)
			step.Action = stepUnchanged
			if len(step.Changes) > 0 {
				step.Action = stepUpdate
			}
		}
		steps = append(steps, step)
	}
	for _, s := range inStack(all, st.Name) {
		svc := s.GetService()
		if inFiles[svc.GetSpec().GetName()] {
			continue
		}
		step := &deployStep{Service: svc.GetSpec().GetName(), ID: svc.GetId(), Action: stepKeep, current: svc}
		if prune {
			step.Action = stepRemove
		}
		steps = append(steps, step)
	}
	return steps, errors.Join(errs...)
}

// specChanges names the spec fields that differ (as JSON paths, like the
// manager's plans); none means the service is up to date.
func specChanges(old, new *api.ServiceSpec) []string {
	if old == nil {
		old = &api.ServiceSpec{}
	}
	if proto.Equal(shoalpb.FromServiceSpec(old), shoalpb.FromServiceSpec(new)) {
		return nil
	}
	a, b := flattenSpec(old), flattenSpec(new)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(union(a, b))) {
		if a[k] != b[k] {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		// Equal as JSON, different as proto: a nil and an empty value the
		// manager keeps apart. Updating is harmless and keeps them equal.
		out = []string{"(representation)"}
	}
	return out
}

func union(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// flattenSpec maps each field of a spec to its JSON text, nested objects
// flattened to dotted paths and lists kept whole.
func flattenSpec(s *api.ServiceSpec) map[string]string {
	raw, err := json.Marshal(s)
	if err != nil {
		return map[string]string{"": err.Error()}
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return map[string]string{"": err.Error()}
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), e)
			}
			return
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
	walk("", tree)
	return out
}

// applyDeploy writes the steps: creates and updates in dependency order,
// then removals. It stops at the first write the manager refuses.
func (g *globals) applyDeploy(ctx context.Context, c *client, res *deployResult) error {
	out := !g.structured(outputTable)
	for _, s := range res.Services {
		var err error
		switch s.Action {
		case stepCreate:
			g.say(out, "Creating service %s\n", s.Service)
			err = g.createStep(ctx, c, s)
		case stepUpdate:
			g.say(out, "Updating service %s (%s)\n", s.Service, strings.Join(s.Changes, ", "))
			err = g.updateStep(ctx, c, s)
		case stepUnchanged:
			g.say(out, "Service %s is up to date\n", s.Service)
		case stepRemove:
			g.say(out, "Removing service %s\n", s.Service)
			var resp *shoalpb.RemoveServiceResponse
			resp, err = invoke(ctx, c, shoalpb.ControlClient.RemoveService, &shoalpb.RemoveServiceRequest{Service: s.ID})
			if err == nil {
				s.Index = strconv.FormatUint(resp.GetIndex(), 10)
			}
			err = rpcError(serviceSubject(s.Service), err)
		case stepKeep:
			fmt.Fprintf(g.app.Err, "Service %s is no longer in the compose files; kept (use --prune to remove it)\n", s.Service)
		}
		if err != nil {
			if g.structured(outputTable) {
				// What was done before the failure; the error says the rest.
				return errors.Join(err, g.writeValue(res))
			}
			return err
		}
	}
	if g.structured(outputTable) {
		return g.writeValue(res)
	}
	return nil
}

// say prints a progress line of a deploy to stdout in table mode.
func (g *globals) say(out bool, format string, args ...any) {
	if out && !g.quiet {
		fmt.Fprintf(g.app.Out, format, args...)
	}
}

func (g *globals) createStep(ctx context.Context, c *client, s *deployStep) error {
	resp, err := invoke(ctx, c, shoalpb.ControlClient.CreateService,
		&shoalpb.CreateServiceRequest{Spec: shoalpb.FromServiceSpec(s.spec), RegistryAuth: s.auth})
	if err != nil {
		return rpcError(serviceSubject(s.Service), err)
	}
	s.ID, s.Index, s.index = resp.GetService().GetId(), strconv.FormatUint(resp.GetIndex(), 10), resp.GetIndex()
	s.version = resp.GetService().GetSpecVersion()
	return nil
}

func (g *globals) updateStep(ctx context.Context, c *client, s *deployStep) error {
	resp, err := invoke(ctx, c, shoalpb.ControlClient.UpdateService, &shoalpb.UpdateServiceRequest{
		Service: s.ID, Spec: shoalpb.FromServiceSpec(s.spec), ExpectedVersion: s.current.GetSpecVersion(), RegistryAuth: s.auth,
	})
	if status.Code(err) == codes.FailedPrecondition {
		return fmt.Errorf("service %q changed while the stack was being deployed (read at version %d): %s; deploy again",
			s.Service, s.current.GetSpecVersion(), statusMessage(err))
	}
	if err != nil {
		return rpcError(serviceSubject(s.Service), err)
	}
	s.Index, s.index = strconv.FormatUint(resp.GetIndex(), 10), resp.GetIndex()
	s.version = resp.GetService().GetSpecVersion()
	return nil
}

// dryRunDeploy asks the manager for the plan of every create and update
// (dry runs change nothing) and lists the tasks a removal would stop.
func (g *globals) dryRunDeploy(ctx context.Context, c *client, res *deployResult) error {
	for _, s := range res.Services {
		var plan *shoalpb.Plan
		switch s.Action {
		case stepCreate:
			resp, err := invoke(ctx, c, shoalpb.ControlClient.CreateService,
				&shoalpb.CreateServiceRequest{Spec: shoalpb.FromServiceSpec(s.spec), DryRun: true})
			if err != nil {
				return rpcError(serviceSubject(s.Service), err)
			}
			plan = resp.GetPlan()
		case stepUpdate:
			resp, err := invoke(ctx, c, shoalpb.ControlClient.UpdateService, &shoalpb.UpdateServiceRequest{
				Service: s.ID, Spec: shoalpb.FromServiceSpec(s.spec), ExpectedVersion: s.current.GetSpecVersion(), DryRun: true,
			})
			if err != nil {
				return rpcError(serviceSubject(s.Service), err)
			}
			plan = resp.GetPlan()
		case stepRemove:
			var err error
			if plan, err = removalPlan(ctx, c, s); err != nil {
				return err
			}
		default:
			plan = &shoalpb.Plan{Action: "none"}
		}
		s.Plan = &planJSON{plan: plan}
	}
	if g.structured(outputTable) {
		return g.writeValue(res)
	}
	return writeDeployPlan(g.app.Out, res)
}

// removalPlan lists the tasks a removal stops: those meant to run.
func removalPlan(ctx context.Context, c *client, s *deployStep) (*shoalpb.Plan, error) {
	resp, err := listTasks(ctx, c, &shoalpb.ListTasksRequest{Service: s.ID})
	if err != nil {
		return nil, rpcError(serviceSubject(s.Service), err)
	}
	nodes, err := listNodes(ctx, c, false)
	if err != nil {
		return nil, rpcError("", err)
	}
	hosts := hostnamesOf(nodes.GetNodes())
	plan := &shoalpb.Plan{Action: stepRemove}
	for _, t := range sortTasks(resp.GetTasks()) {
		if t.GetDesiredState() != api.TaskRunning.String() || taskState(t).Terminal() {
			continue
		}
		plan.Tasks = append(plan.Tasks, &shoalpb.PlannedTask{
			Slot: t.GetSlot(), NodeId: t.GetNodeId(), Hostname: hosts[t.GetNodeId()], Action: "stop",
		})
	}
	return plan, nil
}

// writeDeployPlan prints a stack's dry run, service by service.
func writeDeployPlan(w io.Writer, res *deployResult) error {
	counts := map[string]int{}
	for _, s := range res.Services {
		counts[s.Action]++
	}
	var parts []string
	for _, c := range []struct{ action, text string }{
		{stepCreate, "to create"}, {stepUpdate, "to update"}, {stepUnchanged, "unchanged"},
		{stepRemove, "to remove"}, {stepKeep, "kept"},
	} {
		if n := counts[c.action]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c.text))
		}
	}
	fmt.Fprintf(w, "Dry run: nothing was changed. Stack %q: %s.\n", res.Stack, strings.Join(parts, ", "))
	for _, s := range res.Services {
		switch s.Action {
		case stepUnchanged:
			fmt.Fprintf(w, "\nService %q: unchanged\n", s.Service)
		case stepKeep:
			fmt.Fprintf(w, "\nService %q: kept (no longer in the files; --prune would remove it)\n", s.Service)
		default:
			if err := writeServicePlan(w, s.Service, s.Plan.plan); err != nil {
				return err
			}
		}
	}
	return nil
}
