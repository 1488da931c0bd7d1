package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

func newClusterCommand(g *globals) *cobra.Command {
	cmd := groupCommand("cluster", "Show the managers and their Raft state, change cluster-wide settings, join tokens and certificates",
		`  shoalctl cluster status
  shoalctl cluster update --max-replicas 20000
  shoalctl cluster join-token worker`)
	cmd.AddCommand(newClusterStatusCommand(g), newClusterUpdateCommand(g), newJoinTokenCommand(g), newOperatorCertCommand(g),
		newClusterCACommand(g), newClusterUnlockCommand(g), newClusterUnlockKeyCommand(g))
	return cmd
}

func newClusterUpdateCommand(g *globals) *cobra.Command {
	var maxReplicas uint64
	var rotation time.Duration
	var autolock bool
	var certExpiry time.Duration
	cmd := &cobra.Command{
		Use:   "update [OPTIONS]",
		Short: "Change cluster-wide settings",
		Long: fmt.Sprintf(`Change cluster-wide settings. --max-replicas is the most replicas one
service may have (default %d, at most %d; 0 restores the default). A value
below what a service already has is refused: scale that service down first.
See docs/limits.md for every limit a request is checked against.

--gossip-key-rotation is how often the leader replaces the key that
encrypts gossip (default %s, at least %s; 0 restores the default). Removing
a node or a manager rotates it at once as well.

--cert-expiry is the life of the node certificates the CA issues from now
on (default %s, between %s and %s; 0 restores the default); nodes renew at a
random point between 50%% and 80%% of their certificate's life.

--autolock=true wraps every manager's data key (which encrypts its Raft log
and snapshots) with an unlock key, printed once here and shown again by
shoalctl cluster unlock-key: a manager that restarts then serves nothing
until shoalctl cluster unlock gives it the key. --autolock=false stores the
data keys unwrapped again (file mode 0600).`, api.DefaultMaxReplicas, api.MaxReplicasCeiling,
			api.DefaultGossipKeyRotation, api.MinGossipKeyRotation,
			fmtHours(api.DefaultCertExpiry), api.MinCertExpiry, fmtHours(api.MaxCertExpiry)),
		Example: `  shoalctl cluster update --max-replicas 20000
  shoalctl cluster update --gossip-key-rotation 6h
  shoalctl cluster update --cert-expiry 720h
  shoalctl cluster update --autolock=true`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &shoalpb.UpdateClusterRequest{}
			if cmd.Flags().Changed("max-replicas") {
				req.MaxReplicas = &maxReplicas
			}
			if cmd.Flags().Changed("gossip-key-rotation") {
				req.GossipKeyRotation = durationpb.New(rotation)
			}
			if cmd.Flags().Changed("cert-expiry") {
				req.CertExpiry = durationpb.New(certExpiry)
			}
			if cmd.Flags().Changed("autolock") {
				req.Autolock = &autolock
			}
			if req.MaxReplicas == nil && req.GossipKeyRotation == nil && req.CertExpiry == nil && req.Autolock == nil {
				return errors.New("nothing to update: give --max-replicas, --gossip-key-rotation, --cert-expiry or --autolock")
			}
			if err := api.ValidateClusterSettings(api.ClusterSettings{MaxReplicas: maxReplicas, GossipKeyRotation: api.Duration(rotation),
				CertExpiry: api.Duration(certExpiry)}); err != nil {
				return asFlag(err, map[string]string{"max_replicas": "--max-replicas", "gossip_key_rotation": "--gossip-key-rotation",
					"cert_expiry": "--cert-expiry"})
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.UpdateCluster, req)
				if err != nil {
					return rpcError("", err)
				}
				if g.structured(outputTable) {
					return g.writeMsg(resp)
				}
				// Say what the settings asked about are now.
				if req.MaxReplicas != nil {
					fmt.Fprintf(g.app.Out, "max-replicas is %d\n", resp.GetSettings().GetMaxReplicas())
				}
				if req.GossipKeyRotation != nil {
					fmt.Fprintf(g.app.Out, "gossip-key-rotation is %s\n", resp.GetSettings().GetGossipKeyRotation().AsDuration())
				}
				if req.CertExpiry != nil {
					fmt.Fprintf(g.app.Out, "cert-expiry is %s\n", resp.GetSettings().GetCertExpiry().AsDuration())
				}
				if req.Autolock != nil {
					fmt.Fprintf(g.app.Out, "autolock is %s\n", onOff(resp.GetSettings().GetAutolock()))
				}
				if k := resp.GetUnlockKey(); k != "" {
					fmt.Fprintf(g.app.Out, "\nThe unlock key is:\n\n    %s\n\nKeep it: a restarted manager needs it (shoalctl cluster unlock).\n", k)
				}
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&maxReplicas, "max-replicas", 0, "the most replicas one service may have (0: the default)")
	cmd.Flags().DurationVar(&rotation, "gossip-key-rotation", 0, "how often the gossip key is replaced (0: the default, 12h)")
	cmd.Flags().BoolVar(&autolock, "autolock", false, "wrap the managers' data keys with an unlock key (--autolock=false unwraps them)")
	cmd.Flags().DurationVar(&certExpiry, "cert-expiry", 0, "life of node certificates issued from now on, e.g. 720h (0: the default, 2160h)")
	return cmd
}

func fmtHours(d time.Duration) string { return fmt.Sprintf("%dh", int64(d/time.Hour)) }

func newClusterStatusCommand(g *globals) *cobra.Command {
	var rf readFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the leader, the Raft term and indexes, and every manager",
		Long: `Show the cluster's leader, Raft term and indexes, and every manager. Use
--stale when the cluster has no leader: any manager then answers with what
it knows, which is how to find out which managers are missing.`,
		Example: `  shoalctl cluster status
  shoalctl cluster status --stale --host 10.0.0.2:4242`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.ClusterStatus, &shoalpb.ClusterStatusRequest{Stale: rf.stale})
				if err != nil {
					return rpcError("", err)
				}
				if g.structured(outputTable) {
					return g.writeMsg(resp)
				}
				return writeClusterStatus(g.app.Out, resp)
			})
		},
	}
	rf.register(cmd, false)
	return cmd
}

func writeClusterStatus(w io.Writer, st *shoalpb.ClusterStatusResponse) error {
	s := newSection(w)
	s.line(0, "Cluster ID", st.GetClusterId())
	leader := "none"
	if st.GetLeaderId() != "" {
		leader = fmt.Sprintf("%s (%s)", st.GetLeaderId(), st.GetLeaderAddr())
	}
	s.line(0, "Leader", leader)
	s.line(0, "Term", fmt.Sprint(st.GetTerm()))
	s.line(0, "Last index", fmt.Sprint(st.GetLastIndex()))
	s.line(0, "Commit index", fmt.Sprint(st.GetCommitIndex()))
	s.line(0, "Applied index", fmt.Sprint(st.GetAppliedIndex()))
	s.line(0, "Answered by", st.GetAnsweredBy())
	if set := st.GetSettings(); set != nil {
		s.line(0, "Max replicas", fmt.Sprint(set.GetMaxReplicas()))
		if e := set.GetCertExpiry(); e != nil {
			s.line(0, "Cert expiry", e.AsDuration().String())
		}
		if r := set.GetGossipKeyRotation(); r != nil {
			s.line(0, "Gossip key rotation", r.AsDuration().String())
		}
		s.line(0, "Autolock", onOff(set.GetAutolock()))
	}
	if err := s.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	managers := slices.Clone(st.GetManagers())
	slices.SortFunc(managers, func(a, b *shoalpb.Manager) int { return cmp.Compare(a.GetId(), b.GetId()) })
	t := newTable(w, "ID", "ADDR", "RAFT ADDR", "STATE", "VOTER", "REACHABLE")
	for _, m := range managers {
		t.row(m.GetId(), m.GetAddr(), m.GetRaftAddr(), cmp.Or(m.GetRaftState(), "unknown"), yesNo(m.GetVoter()), yesNo(m.GetReachable()))
	}
	return t.flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
