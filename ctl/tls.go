package ctl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/pki"
)

// CertPathEnv names the environment variable that replaces --tls-dir, as
// DOCKER_CERT_PATH does for docker.
const CertPathEnv = "SHOAL_CERT_PATH"

// tlsFor loads the operator certificate for the targets: a manager over
// TCP takes only mutual TLS, the control socket needs none (its file mode
// is its access control). It returns nil when every target is a socket.
func tlsFor(targets []target, dir string) (*tls.Config, error) {
	needed := false
	for _, t := range targets {
		if !strings.HasPrefix(t.dial, "unix://") {
			needed = true
		}
	}
	if !needed {
		return nil, nil
	}
	if dir == "" {
		return nil, &api.FieldError{Field: "--tls-dir", Value: "", Err: errors.New(
			"a manager over TCP needs an operator certificate: give the directory holding ca.pem, cert.pem and key.pem " +
				"(made with shoalctl cluster operator-cert on a manager host), or env " + CertPathEnv +
				", or use a manager's control socket")}
	}
	creds, err := pki.LoadCredentials(dir)
	if err != nil {
		return nil, &api.FieldError{Field: "--tls-dir", Value: dir, Err: fmt.Errorf("%w (make one with shoalctl cluster operator-cert --out DIR on a manager host)", err)}
	}
	// An expired operator certificate is named here, not left to a bare
	// handshake failure.
	if err := creds.CheckOwn(); err != nil {
		return nil, &api.FieldError{Field: "--tls-dir", Value: dir, Err: fmt.Errorf("%w; get a new one with shoalctl cluster operator-cert", err)}
	}
	return creds.ClientTLS(), nil
}

// explainTransport turns what a failed TLS handshake leaves in an error
// message into a sentence that says what to do.
func explainTransport(msg string) string {
	switch {
	case strings.Contains(msg, "tls: expired certificate"):
		return msg + " (the manager refused this client's certificate as expired or not yet valid: check the clock, or get a new one with shoalctl cluster operator-cert)"
	case strings.Contains(msg, "tls: unknown certificate authority"):
		return msg + " (the manager does not trust this client's certificate: it is from another cluster's CA, or the root was rotated; check --tls-dir)"
	case strings.Contains(msg, "tls: certificate required"), strings.Contains(msg, "tls: bad certificate"):
		return msg + " (the manager refused this client's certificate; check --tls-dir)"
	case strings.Contains(msg, pki.ErrWrongCA.Error()), strings.Contains(msg, pki.ErrExpired.Error()),
		strings.Contains(msg, pki.ErrNotYetValid.Error()):
		return msg + " (the manager's certificate did not verify against --tls-dir's ca.pem: is it the right cluster?)"
	case strings.Contains(msg, "error reading server preface"), strings.Contains(msg, "first record does not look like a TLS handshake"):
		return msg + " (TLS and plaintext do not mix: is this a shoal manager of this version?)"
	}
	return msg
}

// authError explains a refusal by the managers' authorisation.
func authError(msg string, unauthenticated bool) string {
	if unauthenticated {
		return fmt.Sprintf("%s (give an operator certificate with --tls-dir or %s)", msg, CertPathEnv)
	}
	return fmt.Sprintf("%s (this call needs an operator certificate)", msg)
}
