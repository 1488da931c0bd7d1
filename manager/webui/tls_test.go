package webui_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/manager"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
)

// With --ui-tls the browser's certificate is the caller the guard judges:
// an operator and a browser without a certificate (the viewer) read, a
// worker's certificate is refused by the authorisation table.
func TestTLSUIJudgesTheBrowsersCertificate(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{NoGossip: true, Edit: func(cfg *manager.Config) {
		cfg.UIAddr, cfg.UITLS = "127.0.0.1:0", true
	}})
	url := "https://" + c.Manager(0).UIAddr() + "/api/v1/ListNodes"
	roots := c.Manager(0).Credentials().Roots()
	for _, tc := range []struct {
		name  string
		creds *pki.Credentials
		code  int
	}{
		{"operator", c.Credentials(pki.RoleOperator), http.StatusOK},
		{"no certificate", nil, http.StatusOK},
		{"worker", c.Credentials(pki.RoleWorker), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots, ServerName: pki.RoleManager, MinVersion: tls.VersionTLS13}
			if tc.creds != nil {
				cert, err := tls.X509KeyPair(tc.creds.CertPEM(), tc.creds.KeyPEM())
				if err != nil {
					t.Fatal(err)
				}
				cfg.Certificates = []tls.Certificate{cert}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Fatalf("GET ListNodes as %s: %d %s; want %d", tc.name, resp.StatusCode, body, tc.code)
			}
		})
	}
}
