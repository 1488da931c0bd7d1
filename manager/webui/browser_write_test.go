package webui_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/internal/poll"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// operatorProxy serves the --ui-tls UI to the browser on a loopback
// port, presenting an operator certificate upstream: it stands in for
// the browser's own certificate store (headless Chromium cannot be told
// to pick a client certificate without a system policy). The page's
// Origin is rewritten to the UI's, as the browser would send it there.
func operatorProxy(t *testing.T, u *tlsUI) string {
	target, err := url.Parse(u.base)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			if pr.In.Header.Get("Origin") != "" {
				pr.Out.Header.Set("Origin", u.base)
			}
		},
		Transport:     u.client(pki.RoleOperator).Transport,
		FlushInterval: -1, // the event streams
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// An operator scales a service from its page: the write controls show
// for the operator's role, the click reaches ScaleService, and the page
// shows the new count from the Watch stream, without a reload.
func TestBrowserOperatorScales(t *testing.T) {
	ctx := browser(t)
	u := startTLSUI(t)
	u.createService("web")
	base := operatorProxy(t, u)
	if err := navigate(ctx, base+"/#/service/web"); err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	pollPage(t, ctx, 10*time.Second, "operator controls", `(() => {
		const role = document.getElementById("role").textContent;
		if (role !== "operator") return "role shows " + role;
		return document.querySelector('[data-scale="web"]') ? "" : "no scale control"; })()`)
	if _, err := page[bool](ctx, `window.shoalNoReload = true;
		document.querySelector('[data-scale-input="web"]').value = "3";
		document.querySelector('[data-scale="web"]').click(); true`); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		s, err := u.c.Client(0).GetService(t.Context(), &shoalpb.GetServiceRequest{Service: "web"})
		if err == nil && s.GetSpec().GetReplicas() != 3 {
			err = fmt.Errorf("the API has %d replicas of web", s.GetSpec().GetReplicas())
		}
		return err
	})
	pollPage(t, ctx, 5*time.Second, "scaled service page", `(() => {
		if (!window.shoalNoReload) return "the page was reloaded";
		const status = document.querySelector('[data-write-status="web"]').textContent;
		if (status !== "ScaleService done") return "write status: " + status;
		const dd = [...document.querySelectorAll("[data-service-page] dd")].map(d => d.textContent).join("|");
		return dd.includes("of 3") ? "" : "page shows " + dd; })()`)
}
