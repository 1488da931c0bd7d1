package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shoal-sched/shoal/api"
)

// The embedded DNS server: one per agent, listening at 127.0.0.11:53 (UDP
// and TCP) inside each sandbox. The sockets are opened inside the
// sandbox's namespace and then served as any other, so one process answers
// every container on the host, and each only about the networks it is on.

const (
	// DNSAddr is where containers find the embedded DNS server.
	DNSAddr = "127.0.0.11:53"
	// DNSTTL is short so that dnsrr and tasks.NAME follow replicas soon
	// (Swarm's 600 s is a known complaint).
	DNSTTL         = 2
	forwardTimeout = 2 * time.Second
)

// sandboxDNS is the server of one sandbox.
type sandboxDNS struct {
	sb   Sandbox
	udp  *dns.Server
	tcp  *dns.Server
	done chan struct{}
}

type dnsServer struct {
	r         *Reconciler
	log       *slog.Logger
	upstreams []string

	mu      sync.Mutex
	records *records
	servers map[string]*sandboxDNS
}

func newDNSServer(r *Reconciler, upstreams []string) *dnsServer {
	if len(upstreams) == 0 {
		if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
			for _, s := range cc.Servers {
				upstreams = append(upstreams, net.JoinHostPort(s, cc.Port))
			}
		}
	}
	return &dnsServer{r: r, log: r.log.With("part", "dns"), upstreams: upstreams,
		records: buildRecords(&api.NetworkView{}), servers: map[string]*sandboxDNS{}}
}

func (d *dnsServer) setView(v *api.NetworkView) {
	rec := buildRecords(v)
	d.mu.Lock()
	d.records = rec
	d.mu.Unlock()
}

// start serves DNS inside the sandbox at path (once; again after stop).
func (d *dnsServer) start(sb Sandbox, path string) error {
	d.mu.Lock()
	if s := d.servers[sb.TaskID]; s != nil {
		s.sb = sb
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	if sb.None {
		return nil
	}
	ns, err := openNetNS(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	var pc net.PacketConn
	var lis net.Listener
	if err := inNetNS(ns, func() (err error) {
		if pc, err = net.ListenPacket("udp", DNSAddr); err != nil {
			return err
		}
		if lis, err = net.Listen("tcp", DNSAddr); err != nil {
			pc.Close()
		}
		return err
	}); err != nil {
		return fmt.Errorf("task %s: embedded DNS at %s: %w", sb.TaskID, DNSAddr, err)
	}
	s := &sandboxDNS{sb: sb, done: make(chan struct{})}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { d.serve(s, w, q) })
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: lis, Handler: h}
	d.mu.Lock()
	d.servers[sb.TaskID] = s
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.ActivateAndServe() }()
	}
	go func() { wg.Wait(); close(s.done) }()
	return nil
}

// stop closes a sandbox's sockets (they would hold its namespace).
func (d *dnsServer) stop(taskID string) {
	d.mu.Lock()
	s := d.servers[taskID]
	delete(d.servers, taskID)
	d.mu.Unlock()
	if s == nil {
		return
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if err := srv.Shutdown(); err != nil {
			// Not yet started: closing the socket ends ActivateAndServe.
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
	}
	<-s.done
}

func (d *dnsServer) stopAll() {
	d.mu.Lock()
	ids := make([]string, 0, len(d.servers))
	for id := range d.servers {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		d.stop(id)
	}
}

func (d *dnsServer) serve(s *sandboxDNS, w dns.ResponseWriter, q *dns.Msg) {
	defer w.Close()
	d.mu.Lock()
	rec, sb := d.records, s.sb
	d.mu.Unlock()
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		_ = w.WriteMsg(m.SetRcode(q, dns.RcodeFormatError))
		return
	}
	qn := q.Question[0]
	if ips, ok := rec.lookup(sb, qn.Name); ok {
		_ = w.WriteMsg(answerA(q, qn, ips))
		return
	}
	resp, err := d.forward(q, "udp")
	if err == nil && resp.Truncated && w.LocalAddr().Network() == "tcp" {
		resp, err = d.forward(q, "tcp")
	}
	if err != nil {
		d.log.Debug("forward failed", "name", qn.Name, "err", err)
		m := new(dns.Msg)
		resp = m.SetRcode(q, dns.RcodeServerFailure)
	}
	_ = w.WriteMsg(resp)
}

// answerA answers a query for a name the server owns: A records for A
// queries, an empty answer for any other type (so a client does not wait
// for AAAA), NXDOMAIN-free.
func answerA(q *dns.Msg, qn dns.Question, ips []net.IP) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if qn.Qtype != dns.TypeA && qn.Qtype != dns.TypeANY {
		return m
	}
	for _, ip := range ips {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: qn.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: DNSTTL}, A: ip,
		})
	}
	return m
}

// forward asks the host's resolvers, from the agent host's namespace.
func (d *dnsServer) forward(q *dns.Msg, proto string) (*dns.Msg, error) {
	if len(d.upstreams) == 0 {
		return nil, errors.New("no upstream resolver")
	}
	c := &dns.Client{Net: proto, Timeout: forwardTimeout}
	var errs []error
	for _, up := range d.upstreams {
		var conn *dns.Conn
		err := inNetNS(d.r.hostNS, func() (err error) {
			conn, err = c.Dial(up)
			return err
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		resp, _, err := c.ExchangeWithConn(q, conn)
		conn.Close()
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
