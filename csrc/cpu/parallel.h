// cpu/parallel.h — fastinit's own thread pool: parallel_for over chunks of an index range.
//
// Guarantees:
//   - The chunks of [0, total) are [k*grain, min((k+1)*grain, total)) whatever the thread
//     count; threads claim them from a shared counter, so which thread runs a chunk varies
//     but what body computes for an index does not (body must depend on its indices only).
//   - parallel_for returns, or rethrows, only after every body call it started has returned:
//     the caller may free the buffers body writes the moment it gets control back.
//   - One process-wide pool of persistent workers, ours rather than an OpenMP or TBB runtime
//     (a global one inside a Python extension clashes with other extensions'). Idle workers
//     sleep; the pool may be used from several threads at once; a forked child starts with a
//     fresh, empty pool; the pool never blocks process exit.
// N.B. Calls from inside body are not part of the contract.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace fastinit::cpu {

// Number of CPUs this process may run on (sched_getaffinity on Linux;
// hardware_concurrency elsewhere), at least 1.
unsigned available_cpus();

// Runs body(begin, end) over [0, total) cut into consecutive chunks of `grain`
// elements (the last may be shorter), on up to `threads` threads counting the
// calling thread, which works too. Chunks are claimed dynamically (an atomic
// counter), so the split never affects what body computes for an index.
//
// Between its own chunks the calling thread calls `poll()` at most about every
// `poll_interval` (and never more than once per chunk); an empty `poll` is never
// called. If poll returns true, no further chunks are started by anyone, in-flight
// chunks finish, and parallel_for returns false (true if, by then, every chunk had
// been started after all). Returns true when every chunk ran.
//
// If body (or poll) throws, no further chunks start, and the first exception is
// rethrown in the calling thread after all in-flight chunks have finished.
//
// Safe to call concurrently from several threads (their jobs share the pool).
// threads <= 1 or a single chunk runs inline on the caller with no synchronization.
// Throws std::invalid_argument if grain is 0.
bool parallel_for(std::uint64_t total, std::uint64_t grain, unsigned threads,
                  const std::function<void(std::uint64_t, std::uint64_t)>& body,
                  const std::function<bool()>& poll,
                  std::chrono::milliseconds poll_interval = std::chrono::milliseconds(50));

}  // namespace fastinit::cpu
