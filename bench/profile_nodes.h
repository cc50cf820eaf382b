/* profile_nodes.h — per-node timing for bench_forward --profile. */
#ifndef GB_BENCH_PROFILE_NODES_H
#define GB_BENCH_PROFILE_NODES_H

#include <glassbox/glassbox.h>
#include <stdio.h>

/* Run the planned session `runs` times, timing every node on its own, and
 * print the op types and the 10 nodes taking the most time to `out`.
 * `forward_ms` is the median whole-forward time measured by the caller (to
 * show the overhead of timing node by node). Errors are left on the
 * session's context, as with gb_session_run. */
gb_status gb_bench_profile(gb_session *s, const gb_tensor *const *inputs, int runs, double forward_ms, FILE *out);

#endif
