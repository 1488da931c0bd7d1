package ctl

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/stack"
)

// ensureStackSecrets makes the secrets and configs a stack's services use
// before the services: its own (STACK_KEY, labelled with the stack) are
// created when missing and, when present, sent again as an update, which
// the manager refuses if the data changed (a secret's data cannot change:
// rename it in the file to rotate it). External ones must exist.
func (g *globals) ensureStackSecrets(ctx context.Context, c *client, st *stack.Stack, dryRun bool) error {
	if len(st.Secrets) == 0 && len(st.ExternalSecrets) == 0 {
		return nil
	}
	out := !g.structured(outputTable)
	have := map[string]bool{}
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ListSecrets, &shoalpb.ListSecretsRequest{Kind: kind})
		if err != nil {
			return rpcError("", err)
		}
		for _, s := range resp.GetSecrets() {
			have[kind+"/"+s.GetSpec().GetName()] = true
		}
	}
	for _, e := range st.ExternalSecrets {
		if !have[e.Kind+"/"+e.Name] {
			return fmt.Errorf("%s %q is external in the compose files and does not exist: create it first (shoalctl %s create %s FILE)", e.Kind, e.Name, e.Kind, e.Name)
		}
	}
	for _, s := range st.Secrets {
		spec := &shoalpb.SecretSpec{Name: s.Spec.Name, Labels: s.Spec.Labels, Data: s.Spec.Data}
		exists := have[s.Kind+"/"+s.Spec.Name]
		switch {
		case dryRun && !exists:
			g.say(out, "Would create %s %s\n", s.Kind, s.Spec.Name)
		case dryRun:
		case exists:
			_, err := invoke(ctx, c, shoalpb.ControlClient.UpdateSecret, &shoalpb.UpdateSecretRequest{Kind: s.Kind, Secret: s.Spec.Name, Spec: spec})
			if status.Code(err) == codes.InvalidArgument {
				return fmt.Errorf("%s %q: %s (its data in the compose files changed; give it a new name to rotate it)", s.Kind, s.Spec.Name, statusMessage(err))
			}
			if err != nil {
				return rpcError(secretSubject(s.Kind)(s.Spec.Name), err)
			}
		default:
			g.say(out, "Creating %s %s\n", s.Kind, s.Spec.Name)
			if _, err := invoke(ctx, c, shoalpb.ControlClient.CreateSecret, &shoalpb.CreateSecretRequest{Kind: s.Kind, Spec: spec}); err != nil {
				return rpcError(secretSubject(s.Kind)(s.Spec.Name), err)
			}
		}
	}
	return nil
}

// removeStackSecrets removes the secrets and configs a stack created
// (labelled with it), after its services.
func (g *globals) removeStackSecrets(ctx context.Context, c *client, name string) ([]removed, error) {
	var done []removed
	var errs []error
	for _, kind := range []string{api.KindSecret, api.KindConfig} {
		resp, err := invoke(ctx, c, shoalpb.ControlClient.ListSecrets, &shoalpb.ListSecretsRequest{Kind: kind})
		if err != nil {
			return done, rpcError("", err)
		}
		for _, s := range resp.GetSecrets() {
			if s.GetSpec().GetLabels()[api.LabelStack] != name {
				continue
			}
			if !g.structured(outputTable) {
				fmt.Fprintf(g.app.Out, "Removing %s %s\n", kind, s.GetSpec().GetName())
			}
			r, err := invoke(ctx, c, shoalpb.ControlClient.RemoveSecret, &shoalpb.RemoveSecretRequest{Kind: kind, Secret: s.GetId()})
			if err != nil {
				errs = append(errs, rpcError(secretSubject(kind)(s.GetSpec().GetName()), err))
				continue
			}
			done = append(done, newRemoved(s.GetSpec().GetName(), r.GetIndex()))
		}
	}
	return done, errors.Join(errs...)
}

// addRegistryAuth gives each created or updated service the caller's
// credential for its image's registry, where the docker config has one.
func (g *globals) addRegistryAuth(steps []*deployStep) error {
	for _, s := range steps {
		if s.spec == nil {
			continue
		}
		auth, err := g.app.registryAuthFor(s.spec.Image)
		if err != nil {
			return err
		}
		s.auth = auth
	}
	return nil
}
