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
	cmd.AddCommand(newClusterStatusCommand(g), newClusterUpdateCommand(g), newJoinTokenCommand(g), newOperatorCertCommand(g), newClusterCACommand(g))
	return cmd
}

func newClusterUpdateCommand(g *globals) *cobra.Command {
	var maxReplicas uint64
	var certExpiry time.Duration
	cmd := &cobra.Command{
		Use:   "update [OPTIONS]",
		Short: "Change cluster-wide settings",
		Long: fmt.Sprintf(`Change cluster-wide settings. --max-replicas is the most replicas one
service may have (default %d, at most %d; 0 restores the default). A value
below what a service already has is refused: scale that service down first.
--cert-expiry is the life of the node certificates the CA issues from now
on (default %s, between %s and %s; 0 restores the default); nodes renew at a
random point between 50%% and 80%% of their certificate's life.
See docs/limits.md for every limit a request is checked against.`, api.DefaultMaxReplicas, api.MaxReplicasCeiling,
			fmtHours(api.DefaultCertExpiry), api.MinCertExpiry, fmtHours(api.MaxCertExpiry)),
		Example: `  shoalctl cluster update --max-replicas 20000
  shoalctl cluster update --cert-expiry 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setMax, setExpiry := cmd.Flags().Changed("max-replicas"), cmd.Flags().Changed("cert-expiry")
			if !setMax && !setExpiry {
				return errors.New("nothing to update: give --max-replicas or --cert-expiry")
			}
			req := &shoalpb.UpdateClusterRequest{}
			if setMax {
				if err := api.ValidateClusterSettings(api.ClusterSettings{MaxReplicas: maxReplicas}); err != nil {
					return asFlag(err, map[string]string{"max_replicas": "--max-replicas"})
				}
				req.MaxReplicas = &maxReplicas
			}
			if setExpiry {
				if err := api.ValidateClusterSettings(api.ClusterSettings{CertExpiry: api.Duration(certExpiry)}); err != nil {
					return asFlag(err, map[string]string{"cert_expiry": "--cert-expiry"})
				}
				req.CertExpiry = durationpb.New(certExpiry)
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				resp, err := invoke(ctx, c, shoalpb.ControlClient.UpdateCluster, req)
				if err != nil {
					return rpcError("", err)
				}
				if g.structured(outputTable) {
					return g.writeMsg(resp)
				}
				if setMax {
					if _, err := fmt.Fprintf(g.app.Out, "max-replicas is %d\n", resp.GetSettings().GetMaxReplicas()); err != nil {
						return err
					}
				}
				if setExpiry {
					_, err = fmt.Fprintf(g.app.Out, "cert-expiry is %s\n", resp.GetSettings().GetCertExpiry().AsDuration())
				}
				return err
			})
		},
	}
	cmd.Flags().Uint64Var(&maxReplicas, "max-replicas", 0, "the most replicas one service may have (0: the default)")
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
