package ctl

import (
	"crypto/tls"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/pki"
)

// The fake control servers on TCP speak TLS with a manager certificate of
// a CA made for this test binary, and shoalctl dials them with an operator
// certificate of the same CA (SHOAL_CERT_PATH in testApp).
var (
	testCertDir   string
	testServerTLS *tls.Config
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoalctl-pki")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := makeTestPKI(dir); err != nil {
		fmt.Fprintln(os.Stderr, "test pki:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func makeTestPKI(dir string) error {
	now := time.Now()
	root, err := pki.NewRootCA("ctl-test-cluster", now)
	if err != nil {
		return err
	}
	issue := func(id, role string) (*pki.Credentials, error) {
		key, csr, err := pki.NewKeyAndCSR()
		if err != nil {
			return nil, err
		}
		cert, err := root.Issue(csr, pki.Identity{NodeID: id, Role: role, ClusterID: "ctl-test-cluster"}, now, time.Hour)
		if err != nil {
			return nil, err
		}
		return pki.NewCredentials(cert, key, root.CertPEM())
	}
	op, err := issue("test-operator", pki.RoleOperator)
	if err != nil {
		return err
	}
	if err := op.SaveTo(dir); err != nil {
		return err
	}
	mgr, err := issue("test-manager", pki.RoleManager)
	if err != nil {
		return err
	}
	testCertDir, testServerTLS = dir, mgr.ServerTLS()
	return nil
}
