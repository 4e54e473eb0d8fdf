// A small pool of std::threads, created lazily on the first call that asks
// for more than one thread, and reused by every later call.
//
// Why std::thread and not OpenMP: OpenMP in a wheel means shipping a runtime
// (libgomp / libomp / vcomp) that can clash with the one NumPy's BLAS or
// another extension loaded (two OpenMP runtimes in one process oversubscribe
// or crash on macOS); std::thread is part of the C++ runtime every platform
// already has, and the work here is a flat parallel-for over fixed chunks.
//
// Determinism does not depend on the pool: callers split work into tasks by a
// fixed chunk size and reduce per-task results in task order, so any thread
// count (and the serial fallback) gives bit-identical results.
#pragma once
#include <cstddef>
#include <functional>

namespace ssm {

// Threads the kernels may use, the calling thread included (>= 1).
int get_num_threads();
// n >= 1. Takes effect for the next parallel call; idle workers are kept.
void set_num_threads(int n);
// The CPUs this process may run on (sched_getaffinity where it exists).
int default_num_threads();

// The measured time a sleeping worker takes to join a call (ns, a moving
// average; a typical value until the first parallel call).
double wake_latency_ns();

// task(i) for every i in [0, count), on up to get_num_threads() threads (the
// caller runs tasks too, and claims them from the same counter, so workers
// that wake late take no task and are not waited for); returns when all are
// done. If the pool is already
// running another call (calls from several Python threads), this one runs
// serially in the caller instead of waiting. The first exception a task
// throws is rethrown here after all tasks finished.
void parallel_for(size_t count, const std::function<void(size_t)>& task);

}  // namespace ssm
