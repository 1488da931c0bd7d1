package membership

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// LAN failure-detection defaults. On loopback they declare a killed member
// dead in about half a second (median) and raised no false suspicion in
// minutes of idling or with every core saturated; memberlist's own
// DefaultLANConfig takes about 8 s. A member that stalls for longer than
// roughly 0.3-0.4 s is declared dead and rejoins when it resumes, so callers
// must let a returning node become ready again.
const (
	DefaultProbeInterval  = 100 * time.Millisecond
	DefaultProbeTimeout   = 50 * time.Millisecond
	DefaultSuspicionMult  = 2
	DefaultGossipInterval = 50 * time.Millisecond
	// DefaultPushPullInterval is how often a member swaps its full state
	// with a random peer. Gossip alone can miss a member (the epidemic dies
	// out, or UDP packets are lost under load); this anti-entropy repairs it
	// within seconds instead of memberlist's 30 s. The exchange is one small
	// TCP round trip, and memberlist stretches the interval beyond 32 members.
	DefaultPushPullInterval = 5 * time.Second
	// DefaultPort is the gossip port when BindAddr gives none.
	DefaultPort = 7946
	// DefaultBindAddr listens on every interface at DefaultPort.
	DefaultBindAddr = "0.0.0.0:7946"
	// DefaultEventBuffer is how many events wait for a slow reader before
	// new ones are dropped (and counted).
	DefaultEventBuffer = 1024
)

const (
	// broadcastTimeout bounds how long UpdateMeta waits for memberlist to
	// finish retransmitting an update; on a LAN it takes a few gossip
	// intervals, so reaching it means something is badly wrong.
	broadcastTimeout = 5 * time.Second
	// deadNodeReclaimTime lets a node that died come back under the same
	// name at a new address (an agent restarted on another port) instead of
	// being refused as a name conflict until memberlist forgets it.
	deadNodeReclaimTime = 2 * time.Second
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid gossip config")

// Config describes one gossip member. Zero durations and counts take the
// Default… values.
type Config struct {
	// NodeName is the node ID; it names the member in memberlist.
	NodeName string
	// BindAddr is the host:port gossip listens on (UDP and TCP); port 0
	// picks a free one (see Member.Addr). Default DefaultBindAddr.
	BindAddr string
	// AdvertiseAddr is the host:port peers use to reach us, when it differs
	// from BindAddr (NAT, or BindAddr on 0.0.0.0). Port 0 means the bound port.
	AdvertiseAddr string
	// Join lists gossip addresses (host:port) of existing members. Start
	// fails when none of them answers; leave it empty to start alone.
	Join []string
	// Key enables gossip encryption (AES, 16, 24 or 32 bytes). Every member
	// of a cluster needs the same key. See ParseGossipKey.
	Key []byte
	// Keys is a keyring instead of one Key: Keys[0] encrypts, every key
	// decrypts. SetKeys changes it while the member runs (a member started
	// without keys cannot start encrypting later: its peers would refuse
	// it mid-way). Give Key or Keys, not both.
	Keys [][]byte

	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration
	// PushPullInterval is the period of full-state exchanges.
	PushPullInterval time.Duration
	// EventBuffer is the capacity of the Events channel.
	EventBuffer int

	// Meta is what this member advertises. An empty Meta.NodeID takes NodeName.
	Meta Meta
	// Logger receives this package's logs and memberlist's (at debug level),
	// with component=gossip. Nil discards them.
	Logger *slog.Logger
}

// ParseGossipKey decodes a base64 gossip key (the --gossip-key flag).
func ParseGossipKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		// The key is a secret: name the problem, never echo the value.
		return nil, fmt.Errorf("%w: gossip key (%d characters) is not valid base64: %w", ErrInvalidConfig, len(s), err)
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

// checkKeys checks a keyring: each key as checkKey, none empty, none twice.
func checkKeys(keys [][]byte, emptyOK bool) error {
	if len(keys) == 0 && !emptyOK {
		return fmt.Errorf("%w: gossip keyring is empty", ErrInvalidConfig)
	}
	for i, k := range keys {
		if len(k) == 0 {
			return fmt.Errorf("%w: gossip key %d of the keyring is empty", ErrInvalidConfig, i)
		}
		if err := checkKey(k); err != nil {
			return err
		}
		for j := range i {
			if bytes.Equal(keys[j], k) {
				return fmt.Errorf("%w: gossip keys %d and %d of the keyring are the same", ErrInvalidConfig, j, i)
			}
		}
	}
	return nil
}

func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}

func checkKey(key []byte) error {
	switch len(key) {
	case 0, 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: gossip key is %d bytes, want 16, 24 or 32 (AES-128/192/256)", ErrInvalidConfig, len(key))
}

// withDefaults returns a validated copy of c with every zero value filled.
func (c Config) withDefaults() (Config, error) {
	if c.NodeName == "" {
		return c, fmt.Errorf("%w: node name is empty", ErrInvalidConfig)
	}
	c.BindAddr = cmp.Or(c.BindAddr, DefaultBindAddr)
	c.ProbeInterval = cmp.Or(c.ProbeInterval, DefaultProbeInterval)
	c.ProbeTimeout = cmp.Or(c.ProbeTimeout, DefaultProbeTimeout)
	c.SuspicionMult = cmp.Or(c.SuspicionMult, DefaultSuspicionMult)
	c.GossipInterval = cmp.Or(c.GossipInterval, DefaultGossipInterval)
	c.PushPullInterval = cmp.Or(c.PushPullInterval, DefaultPushPullInterval)
	c.EventBuffer = cmp.Or(c.EventBuffer, DefaultEventBuffer)
	c.Meta = c.Meta.Clone()
	c.Join = append([]string(nil), c.Join...)
	c.Keys = cloneKeys(c.Keys)
	c.Meta.NodeID = cmp.Or(c.Meta.NodeID, c.NodeName)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if c.Meta.NodeID != c.NodeName {
		return fmt.Errorf("%w: meta node_id %q differs from node name %q", ErrInvalidConfig, c.Meta.NodeID, c.NodeName)
	}
	if c.Meta.Leaving {
		return fmt.Errorf("%w: meta leaving is set by Leave, not at start", ErrInvalidConfig)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"probe_interval", c.ProbeInterval}, {"probe_timeout", c.ProbeTimeout}, {"gossip_interval", c.GossipInterval},
		{"push_pull_interval", c.PushPullInterval}} {
		if f.d < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidConfig, f.name, f.d)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return fmt.Errorf("%w: probe_timeout %v must be shorter than probe_interval %v (indirect probes need the rest)",
			ErrInvalidConfig, c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 0 {
		return fmt.Errorf("%w: suspicion_mult %d is negative", ErrInvalidConfig, c.SuspicionMult)
	}
	if c.EventBuffer < 0 {
		return fmt.Errorf("%w: event_buffer %d is negative", ErrInvalidConfig, c.EventBuffer)
	}
	if err := checkKey(c.Key); err != nil {
		return err
	}
	if len(c.Key) > 0 && len(c.Keys) > 0 {
		return fmt.Errorf("%w: both a key and a keyring given; give one", ErrInvalidConfig)
	}
	if err := checkKeys(c.Keys, true); err != nil {
		return err
	}
	for _, a := range c.Join {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("%w: join list %q has an empty address", ErrInvalidConfig, c.Join)
		}
	}
	if _, err := EncodeMeta(c.Meta); err != nil {
		return err
	}
	return nil
}

// memberlistConfig translates c (already defaulted) for memberlist.
func (c Config) memberlistConfig(d *delegates) (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeName
	host, port, err := splitAddr("bind_addr", c.BindAddr, DefaultPort)
	if err != nil {
		return nil, err
	}
	mc.BindAddr, mc.BindPort = host, port
	if c.AdvertiseAddr != "" {
		host, port, err := splitAddr("advertise_addr", c.AdvertiseAddr, 0)
		if err != nil {
			return nil, err
		}
		if net.ParseIP(host).IsUnspecified() {
			return nil, fmt.Errorf("%w: advertise_addr %q: peers cannot reach an unspecified address", ErrInvalidConfig, c.AdvertiseAddr)
		}
		// Port 0 advertises the bound port; memberlist fills it in itself
		// when it picked the bind port.
		mc.AdvertiseAddr, mc.AdvertisePort = host, cmp.Or(port, mc.BindPort)
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.GossipInterval = c.GossipInterval
	mc.PushPullInterval = c.PushPullInterval
	mc.DeadNodeReclaimTime = deadNodeReclaimTime
	if len(c.Key) > 0 {
		mc.SecretKey = append([]byte(nil), c.Key...)
	}
	if len(c.Keys) > 0 {
		ring, err := memberlist.NewKeyring(cloneKeys(c.Keys[1:]), bytes.Clone(c.Keys[0]))
		if err != nil {
			return nil, fmt.Errorf("%w: gossip keyring: %w", ErrInvalidConfig, err)
		}
		mc.Keyring = ring
	}
	mc.Delegate = d.meta
	mc.Events = d.events
	mc.Conflict = d.conflict
	mc.Logger = log.New(&logWriter{log: c.Logger}, "", 0)
	return mc, nil
}

// splitAddr parses host:port where host must be an IP literal (memberlist
// binds and advertises IPs, not names). An empty host means 0.0.0.0.
func splitAddr(field, addr string, defPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		host, portStr = addr, strconv.Itoa(defPort)
		if net.ParseIP(addr) == nil {
			return "", 0, fmt.Errorf("%w: %s %q: want ip:port: %w", ErrInvalidConfig, field, addr, err)
		}
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%w: %s %q: host %q is not an IP address", ErrInvalidConfig, field, addr, host)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %s %q: port %q is not a number from 0 to 65535", ErrInvalidConfig, field, addr, portStr)
	}
	return host, port, nil
}
