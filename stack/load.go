// Package stack reads compose files into the service specs of a shoal
// stack: every service of the files becomes one api.ServiceSpec named
// STACK_SERVICE, in dependency order, with a warning for each compose
// attribute shoal does not honour. It does no I/O besides reading the
// files (and the env files they name) and talks to no manager.
package stack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"

	"github.com/shoal-sched/shoal/api"
)

// Errors wrapped by Load.
var (
	// ErrUnsupported: Options.Strict is set and the files use attributes
	// shoal does not honour.
	ErrUnsupported = errors.New("unsupported compose attributes")
	// ErrCycle: services depend on each other in a loop.
	ErrCycle = api.ErrDependencyCycle
	// ErrInvalid: a file cannot be read as a stack (syntax, schema, a
	// value shoal refuses).
	ErrInvalid = errors.New("invalid compose file")
)

// Options say what to load.
type Options struct {
	// Name is the stack name; services are named Name_SERVICE.
	Name string
	// Files are the compose files, merged in order (later ones override).
	Files []string
	// WorkingDir resolves relative paths and holds the default .env file;
	// empty means the directory of the first file.
	WorkingDir string
	// Env is the environment for ${VAR} interpolation, KEY=VALUE. It wins
	// over the .env file, as in docker compose.
	Env []string
	// Profiles are the profiles to enable; none means COMPOSE_PROFILES
	// from Env or the .env file.
	Profiles []string
	// Strict turns every warning into an error.
	Strict bool
}

// Stack is what compose files describe, ready to send to a manager.
type Stack struct {
	Name string
	// Services in dependency order: a service comes after every service
	// it depends on.
	Services []*api.ServiceSpec
	// Warnings say what in the files shoal ignores or treats differently.
	Warnings []Warning
	// Networks are the networks the stack creates (STACK_default and the
	// top-level networks its services use), labelled with the stack;
	// ExternalNetworks must exist already.
	Networks         []api.NetworkSpec
	ExternalNetworks []string
	// Secrets are the secrets and configs the stack creates (with their
	// data, labelled with the stack); ExternalSecrets must exist already.
	Secrets         []StackSecret
	ExternalSecrets []ExternalSecret
}

// Warning is one thing in the files that shoal does not do as written.
type Warning struct {
	Service string // compose service name; "" for a top-level key
	Key     string // compose key, like "ports" or "deploy.endpoint_mode"
	Message string
}

func (w Warning) String() string {
	if w.Service == "" {
		return fmt.Sprintf("%s: %s", w.Key, w.Message)
	}
	return fmt.Sprintf("service %q: %s: %s", w.Service, w.Key, w.Message)
}

// Load reads the compose files of opts into a Stack.
func Load(ctx context.Context, opts Options) (*Stack, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, &api.FieldError{Field: "stack name", Value: opts.Name, Err: err}
	}
	if len(opts.Files) == 0 {
		return nil, fmt.Errorf("%w: no compose file given", ErrInvalid)
	}
	var found []loader.UnsupportedAttribute
	report := func(f []loader.UnsupportedAttribute) { found = f }
	project, logged, err := loadLogged(ctx, opts, report)
	if err != nil {
		return nil, err
	}
	st, err := build(opts, project, found, logged)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// composeMu serialises loads: compose-go reports some warnings (a variable
// that is not set, an obsolete version key) only through the process-wide
// logrus logger, and Load captures them with a hook for the duration of
// one load.
var composeMu sync.Mutex

// loadLogged loads the project and returns compose-go's warnings with it.
func loadLogged(ctx context.Context, opts Options, report func([]loader.UnsupportedAttribute)) (*types.Project, []Warning, error) {
	composeMu.Lock()
	defer composeMu.Unlock()
	hook := &warningHook{}
	std := logrus.StandardLogger()
	old := std.ReplaceHooks(logrus.LevelHooks{})
	std.AddHook(hook)
	defer std.ReplaceHooks(old)
	p, err := loadProject(ctx, opts, report)
	return p, hook.warnings, err
}

// warningHook keeps compose-go's warnings as stack warnings.
type warningHook struct{ warnings []Warning }

func (h *warningHook) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel} }

func (h *warningHook) Fire(e *logrus.Entry) error {
	h.warnings = append(h.warnings, Warning{Key: "compose", Message: e.Message})
	return nil
}

// loadProject runs compose-go: interpolation, .env, merging, profiles,
// extends, env_file and path resolution, schema validation.
func loadProject(ctx context.Context, opts Options, report func([]loader.UnsupportedAttribute)) (p *types.Project, err error) {
	// compose-go indexes into the YAML it reads with unchecked type
	// assertions in places; a malformed file must give an error, not end
	// shoalctl.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: the compose library failed on this input: %v", ErrInvalid, r)
		}
	}()
	wd := opts.WorkingDir
	if wd == "" {
		wd = filepath.Dir(opts.Files[0])
	}
	po, err := cli.NewProjectOptions(opts.Files,
		cli.WithName(opts.Name),
		cli.WithWorkingDirectory(wd),
		cli.WithEnv(opts.Env),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(opts.Profiles...),
		cli.WithLoadOptions(loader.WithSupportedAttributes(supported, report)),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p, err = po.LoadProject(ctx)
	// compose-go finds depends_on cycles itself, with a message that names
	// the cycle but no error value to test for.
	if err != nil && strings.Contains(err.Error(), "dependency cycle detected") {
		return nil, fmt.Errorf("%w: %w", ErrCycle, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return p, nil
}

// build converts a loaded project and orders its services.
func build(opts Options, p *types.Project, found []loader.UnsupportedAttribute, logged []Warning) (*Stack, error) {
	st := &Stack{Name: opts.Name, Warnings: logged}
	seen := map[Warning]bool{}
	for _, f := range found {
		w := attributeWarning(f.Path)
		// Services a profile left out are not deployed: their keys do
		// not matter.
		if _, active := p.Services[w.Service]; w.Service != "" && !active {
			continue
		}
		if !seen[w] {
			seen[w] = true
			st.Warnings = append(st.Warnings, w)
		}
	}
	c := &converter{stack: opts.Name, project: p}
	var errs []error
	specs := map[string]*api.ServiceSpec{}
	for _, name := range p.ServiceNames() {
		spec, err := c.service(p.Services[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		specs[name] = spec
	}
	nets, external, nerrs := c.stackNetworks(specs)
	errs = append(errs, nerrs...)
	st.Networks, st.ExternalNetworks = nets, external
	secrets, extSecrets, serrs := c.stackSecrets(p.Environment)
	errs = append(errs, serrs...)
	st.Secrets, st.ExternalSecrets = secrets, extSecrets
	st.Warnings = append(st.Warnings, c.warnings...)
	sortWarnings(st.Warnings)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	order, err := api.DependencyOrder(dependencies(p))
	if err != nil {
		return nil, err
	}
	for _, name := range order {
		st.Services = append(st.Services, specs[name])
	}
	if opts.Strict && len(st.Warnings) > 0 {
		return nil, strictError(st.Warnings)
	}
	return st, nil
}

func sortWarnings(ws []Warning) {
	slices.SortStableFunc(ws, func(a, b Warning) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
}

func strictError(ws []Warning) error {
	lines := make([]string, len(ws))
	for i, w := range ws {
		lines[i] = "  " + w.String()
	}
	return fmt.Errorf("%w (--strict):\n%s", ErrUnsupported, strings.Join(lines, "\n"))
}

// ServiceName is the name of compose service svc in stack.
func ServiceName(stack, svc string) string { return stack + "_" + svc }

// ValidateName checks a stack name: a-z, 0-9 and '-', starting and ending
// with a letter or digit, at most 40 characters so that STACK_SERVICE
// leaves room for the service name. '_' is left out because it separates
// the stack from the service.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) > 40:
		return fmt.Errorf("%d characters, at most 40 allowed", len(name))
	}
	for i, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return fmt.Errorf("character %q at %d not allowed (use a-z, 0-9 and '-')", r, i)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}
