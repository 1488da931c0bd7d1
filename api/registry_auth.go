package api

import "fmt"

// MaxRegistryAuthLen bounds each field of a registry credential.
const MaxRegistryAuthLen = 4096

// RegistryAuth is a caller's credential for the registry of a service's
// image (service create --with-registry-auth). It is kept with the service,
// never shown, and sent only to the agents that run the service's tasks,
// which use it to pull.
type RegistryAuth struct {
	Registry string `json:"registry"` // host[:port], e.g. docker.io or reg:5000
	Username string `json:"username"`
	Password string `json:"password"`
}

// ValidateRegistryAuth checks a credential (nil is none).
func ValidateRegistryAuth(a *RegistryAuth) error {
	if a == nil {
		return nil
	}
	var errs []error
	for _, f := range []struct{ name, v string }{{"registry_auth.registry", a.Registry}, {"registry_auth.username", a.Username}} {
		switch {
		case f.v == "":
			errs = append(errs, fieldErr(f.name, "", "missing"))
		case len(f.v) > MaxRegistryAuthLen:
			errs = append(errs, fieldErr(f.name, f.v, "%d bytes, at most %d allowed", len(f.v), MaxRegistryAuthLen))
		}
	}
	if len(a.Password) > MaxRegistryAuthLen {
		errs = append(errs, fieldErr("registry_auth.password", fmt.Sprintf("%d bytes", len(a.Password)), "at most %d bytes", MaxRegistryAuthLen))
	}
	return joinErrors(errs)
}
