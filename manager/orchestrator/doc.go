// Package orchestrator turns the desired state of services into tasks and
// places them: the replicated and global reconcilers, the restart
// supervisor, the rolling updater, the reaper and the scheduling loop, in
// one level-triggered loop that runs on the Raft leader (New, then Run on
// gaining leadership; cancel on losing it).
//
// Every pass reads the state it needs — all of it in a full pass; in a
// pass narrowed to the services the store's events named, their tasks,
// the tasks waiting for a node and the services those need (watch.go,
// world.go) — works out what to change — tasks to create, to stop, to
// delete, to place — and commits it through the Applier as log entries of
// WriteTasks, AssignTasks, or a Batch of both: one entry for a small pass,
// several of at most 1,000 tasks and about 1 MiB each for a large one
// (entries.go), so that no entry nears raftstore.MaxEntryBytes. Nothing is
// kept between passes but hints (refused assignments, timers) and a cache
// of what each node's tasks hold, brought forward by the store's changes
// and rebuilt by every full pass (loads.go): what a pass does follows from
// the store alone, so a new leader takes over where the old one stopped,
// and a pass cut short after some of its entries is finished by the next. All changes of one
// slot (or one node of a global service) go in the same entry — a stop
// and its replacement always together — so nothing is lost or done twice
// across a leader change. Tasks name their spec by version and carry no
// copy of it; the pass reads each version from the store. A new leader
// first waits for its state to hold the whole committed log (VerifyLeader,
// when the Applier offers it).
//
// The rules, where shoal had to choose:
//
//   - Slots. A replicated service fills slots 1..N. Scale-down gives up
//     first the slots whose task is on no node, then those on the nodes
//     that run the most tasks of the service, the highest slot first among
//     equals — so after an unbalanced scale-down the numbers can have gaps;
//     scale-up fills the lowest free numbers.
//   - Restarts. A task that ends while it should run (complete, failed,
//     rejected, or shut down without being asked) goes to the restart
//     policy: any → replaced; on-failure → replaced when failed, rejected
//     or exit code ≠ 0; none → left as the slot's task (nothing new is
//     made for that slot). The replacement is created at once, held back
//     by Task.NotBefore: Delay × 2^(k-1) after k consecutive failures of
//     the slot, capped at 10 × Delay (a clean exit under any waits Delay).
//     MaxAttempts counts the tasks of the slot, at the same spec version,
//     that ended on their own within Window before this one (Window 0:
//     ever); a service update starts the count afresh.
//   - Lost nodes. The tasks of a node that is down or removed become
//     orphaned and are replaced at once, whatever the restart policy.
//     Drain starts a replacement elsewhere first and stops the old task
//     once the replacement runs. Pause only keeps new tasks off the node.
//   - Updates. A task is outdated when its spec differs from the service's
//     in anything it runs with (api.SameRuntime: replicas, update,
//     rollback and restart policy and depends_on do not count). The
//     rollout is a state machine on the service's UpdateStatus, committed
//     through Raft (rollout.go, update_status.go): Parallelism slots (0:
//     all) are replaced at a time; a replacement is in flight until it has
//     been up (api.TaskUp) for the longer of Delay and Monitor. stop-first
//     (default) stops the old task in the entry that creates the new one
//     and the scheduler holds the new one until the old has stopped;
//     start-first stops the old one once the new one is up. A task of the
//     new version that ends, or is not up, within Monitor of its start is
//     a failure; past MaxFailureRatio the FailureAction runs (pause,
//     continue, or a rollback: the previous spec as a new version, rolled
//     with the RollbackConfig). Canaries start beside the old tasks and
//     wait for a promotion.
//   - Global services. One task per node that is ready, active and matches
//     the constraints. A paused, down or unknown node keeps its task but
//     gets no new one; a drained node, one that stops matching, or a
//     removed one loses it. Global tasks name their node from creation, so
//     the scheduler only checks that node; the assignment is committed
//     through AssignTasks like any other, and the FSM's re-check of the
//     node's room keeps two services from overcommitting it.
//   - depends_on. A service's tasks are not placed until each dependency
//     has all its desired replicas running (service_started), up and
//     healthy by their health check (service_healthy, api.TaskUp; a
//     dependency without a check holds them with a reason that says so)
//     or a task per slot that exited 0
//     (service_completed_successfully). A missing dependency keeps them
//     pending with that reason.
//   - Reaper. Tasks of removed services are deleted once they have ended
//     (agent report, or orphaned with their node) or never reached a node.
//     Each slot keeps its newest 5 ended tasks (more if MaxAttempts is
//     higher); a global service's tasks on a removed node are deleted.
package orchestrator
