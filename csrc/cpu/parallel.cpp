// cpu/parallel.cpp — how the pool works.
//
// A parallel_for with helpers becomes a Job on the caller's stack, queued in the
// pool until it has as many helpers as it wants or the caller withdraws it. Caller
// and helpers claim chunks from the job's atomic counter until none is left; the
// caller then withdraws the job (so no new helper can join) and waits until the
// helpers that did join have left. Helpers never touch the job after leaving, so
// the caller may return, and the job and the buffers die, the moment the count is 0.
#include "cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <signal.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

namespace fastinit::cpu {
namespace {

using Body = std::function<void(std::uint64_t, std::uint64_t)>;
using Clock = std::chrono::steady_clock;

// Far above any core count we serve; it only bounds what a runaway `threads` can spawn.
constexpr unsigned kMaxWorkers = 256;

// A worker that runs out of jobs spins this long before sleeping, so back-to-back
// parallel_for calls find it awake instead of paying a wake-up each (50-100 us on
// a VM). At most one spinner per CPU but one, which is left to the callers.
constexpr auto kWorkerSpin = std::chrono::microseconds(50);

// A caller whose chunks are all claimed spins this long on its helpers before
// sleeping: the last helper usually finishes within a few microseconds.
constexpr auto kCallerSpin = std::chrono::microseconds(20);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() holds or `limit` has passed; returns done().
template <class Done>
bool spin_until(Done done, Clock::duration limit) {
  const Clock::time_point deadline = Clock::now() + limit;
  do {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
  } while (Clock::now() < deadline);
  return done();
}

std::uint64_t count_chunks(std::uint64_t total, std::uint64_t grain) {
  return total / grain + (total % grain != 0 ? 1 : 0);  // no overflow, unlike (total+grain-1)/grain
}

// One parallel_for call. It lives on the caller's stack; workers touch it only
// between joining (under the pool mutex) and their decrement of active_helpers.
struct Job {
  Job(const Body& job_body, std::uint64_t job_total, std::uint64_t job_grain, unsigned helpers)
      : body(job_body),
        total(job_total),
        grain(job_grain),
        chunk_count(count_chunks(job_total, job_grain)),
        helpers_wanted(helpers) {}

  const Body& body;
  const std::uint64_t total;
  const std::uint64_t grain;
  const std::uint64_t chunk_count;
  const unsigned helpers_wanted;

  // The next chunk to start; set to chunk_count to stop the job.
  std::atomic<std::uint64_t> next_chunk{0};
  // Workers inside the job: joined under the pool mutex, left without it.
  std::atomic<unsigned> active_helpers{0};
  unsigned helpers_joined = 0;     // guarded by the pool mutex
  std::exception_ptr first_error;  // guarded by the pool mutex
};

// A compare-exchange loop rather than fetch_add: failed claims never push the
// counter past chunk_count, so it cannot wrap even when chunk_count is near 2^64.
bool claim_chunk(Job& job, std::uint64_t& chunk) {
  std::uint64_t next = job.next_chunk.load(std::memory_order_relaxed);
  while (next < job.chunk_count) {
    if (job.next_chunk.compare_exchange_weak(next, next + 1, std::memory_order_relaxed)) {
      chunk = next;
      return true;
    }
  }
  return false;
}

// Stops the job; returns whether any chunk was left unstarted.
bool stop_job(Job& job) {
  return job.next_chunk.exchange(job.chunk_count, std::memory_order_relaxed) < job.chunk_count;
}

void run_chunk(const Body& body, std::uint64_t total, std::uint64_t grain, std::uint64_t chunk) {
  const std::uint64_t begin = chunk * grain;  // <= total - 1: chunk < chunk_count
  body(begin, begin + std::min(grain, total - begin));
}

// Calls poll() once `interval` has passed since the previous call (or the start).
class PollTimer {
 public:
  PollTimer(const std::function<bool()>& poll, std::chrono::milliseconds interval)
      : poll_(poll), interval_(std::max(interval, std::chrono::milliseconds(0))) {
    if (poll_) due_ = Clock::now() + interval_;
  }

  bool stop_requested() {
    if (!poll_ || Clock::now() < due_) return false;
    const bool stop = poll_();
    due_ = Clock::now() + interval_;
    return stop;
  }

 private:
  const std::function<bool()>& poll_;
  const std::chrono::milliseconds interval_;
  Clock::time_point due_;
};

// Blocks asynchronous signals in threads started while it lives. Workers inherit the
// mask, so the kernel delivers SIGINT and friends to the interpreter's threads and a
// blocking call there is interrupted (Ctrl-C in Python stays prompt). Faults stay
// unblocked so a crash in body still reaches faulthandler, and SIGPROF so that
// sampling profilers still see the workers.
class AsyncSignalsBlocked {
 public:
  AsyncSignalsBlocked() {
#if defined(__unix__) || defined(__APPLE__)
    sigset_t async_signals;
    sigfillset(&async_signals);
    for (int kept : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGPROF}) {
      sigdelset(&async_signals, kept);
    }
    pthread_sigmask(SIG_BLOCK, &async_signals, &previous_);
#endif
  }
  ~AsyncSignalsBlocked() {
#if defined(__unix__) || defined(__APPLE__)
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
#endif
  }
  AsyncSignalsBlocked(const AsyncSignalsBlocked&) = delete;
  AsyncSignalsBlocked& operator=(const AsyncSignalsBlocked&) = delete;

 private:
#if defined(__unix__) || defined(__APPLE__)
  sigset_t previous_;
#endif
};

// std::mutex sleeps in the kernel as soon as it is contended, and waking from there
// costs tens of microseconds on a VM. The pool's critical sections are a few
// instructions long, so trying briefly first is almost always enough.
void lock_spinning(std::unique_lock<std::mutex>& lock) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (lock.try_lock()) return;
    cpu_relax();
  }
  lock.lock();
}

class Pool {
 public:
  // Makes sure at least `wanted` workers exist (as far as the OS lets us).
  void grow_to(unsigned wanted) {
    if (worker_count_.load(std::memory_order_relaxed) >= wanted) return;
    std::lock_guard<std::mutex> lock(mutex_);
    const AsyncSignalsBlocked signals_blocked;
    while (worker_count_.load(std::memory_order_relaxed) < std::min(wanted, worker_limit_)) {
      try {
        std::thread(&Pool::work, this).detach();
      } catch (const std::system_error&) {
        worker_limit_ = worker_count_.load(std::memory_order_relaxed);  // do not retry per call
        break;
      }
      worker_count_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Runs the job with the caller working too; see parallel_for.
  bool run(Job& job, PollTimer& poll_timer) {
    {
      std::unique_lock<std::mutex> lock(mutex_, std::defer_lock);
      lock_spinning(lock);
      open_jobs_.push_back(&job);
      open_job_count_.store(open_jobs_.size(), std::memory_order_relaxed);
    }
    if (job.helpers_wanted == 1) {
      work_ready_.notify_one();
    } else {
      work_ready_.notify_all();
    }

    bool cancelled = false;
    try {
      std::uint64_t chunk = 0;
      for (bool first = true;; first = false) {
        if (!first && job.next_chunk.load(std::memory_order_relaxed) < job.chunk_count &&
            poll_timer.stop_requested()) {
          cancelled = stop_job(job);
          break;
        }
        if (!claim_chunk(job, chunk)) break;
        run_chunk(job.body, job.total, job.grain, chunk);
      }
    } catch (...) {
      record_error(job, std::current_exception());
    }
    wait_for_helpers(job);
    if (job.first_error) std::rethrow_exception(job.first_error);
    return !cancelled;
  }

  // Set only in a forked child, on the pool it abandons, so that leak checkers
  // still see every abandoned pool as reachable.
  Pool* abandoned_before = nullptr;

 private:
  void work() {
    for (;;) {
      Job& job = join_next_job();
      help(job);
      leave(job);
    }
  }

  // Waits (spinning briefly, then asleep) for a job that takes helpers, and joins it.
  Job& join_next_job() {
    std::unique_lock<std::mutex> lock(mutex_, std::defer_lock);
    for (;;) {
      if (spinning_workers_.fetch_add(1, std::memory_order_relaxed) + 1 < cpus_) {
        spin_until([this] { return open_job_count_.load(std::memory_order_relaxed) != 0; },
                   kWorkerSpin);
      }
      spinning_workers_.fetch_sub(1, std::memory_order_relaxed);
      lock_spinning(lock);
      work_ready_.wait(lock, [this] { return !open_jobs_.empty(); });
      Job& job = *open_jobs_.front();
      const bool exhausted = job.next_chunk.load(std::memory_order_relaxed) >= job.chunk_count;
      if (exhausted || ++job.helpers_joined == job.helpers_wanted) {
        open_jobs_.pop_front();
        open_job_count_.store(open_jobs_.size(), std::memory_order_relaxed);
      }
      if (!exhausted) {
        job.active_helpers.fetch_add(1, std::memory_order_relaxed);
        return job;
      }
      lock.unlock();
    }
  }

  void help(Job& job) {
    try {
      std::uint64_t chunk = 0;
      while (claim_chunk(job, chunk)) run_chunk(job.body, job.total, job.grain, chunk);
    } catch (...) {
      record_error(job, std::current_exception());
    }
  }

  // Leaves without the mutex: a caller holding it (or spinning on the count) must
  // never wait for a worker queued behind it.
  // N.B. Sequentially consistent on purpose, paired with wait_for_helpers: either
  // the caller sees zero helpers or we see it asleep, never neither.
  void leave(Job& job) {
    if (job.active_helpers.fetch_sub(1) != 1) return;
    // From here on the job may be gone; only the pool is touched.
    if (sleeping_callers_.load() == 0) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
    }  // the caller is inside wait() now
    helpers_left_.notify_all();
  }

  void record_error(Job& job, std::exception_ptr error) {
    stop_job(job);
    std::lock_guard<std::mutex> lock(mutex_);
    if (!job.first_error) job.first_error = std::move(error);
  }

  // Closes the job to new helpers and returns once none is inside it.
  void wait_for_helpers(Job& job) {
    std::unique_lock<std::mutex> lock(mutex_, std::defer_lock);
    lock_spinning(lock);
    const auto open = std::find(open_jobs_.begin(), open_jobs_.end(), &job);
    if (open != open_jobs_.end()) {
      open_jobs_.erase(open);
      open_job_count_.store(open_jobs_.size(), std::memory_order_relaxed);
    }
    lock.unlock();
    const auto helpers_gone = [&job] { return job.active_helpers.load() == 0; };
    if (spin_until(helpers_gone, kCallerSpin)) return;
    lock_spinning(lock);
    sleeping_callers_.fetch_add(1);
    helpers_left_.wait(lock, helpers_gone);
    sleeping_callers_.fetch_sub(1);
  }

  std::mutex mutex_;
  std::condition_variable work_ready_;          // idle workers sleep here
  std::condition_variable helpers_left_;        // callers sleep here until their helpers are gone
  std::deque<Job*> open_jobs_;                  // jobs that still take helpers, oldest first
  std::atomic<std::size_t> open_job_count_{0};  // open_jobs_.size(), for spinning workers
  std::atomic<unsigned> sleeping_callers_{0};   // callers inside helpers_left_.wait
  std::atomic<unsigned> spinning_workers_{0};   // kept below cpus_
  std::atomic<unsigned> worker_count_{0};       // written under the mutex
  unsigned worker_limit_ = kMaxWorkers;         // guarded by the mutex
  const unsigned cpus_ = available_cpus();
};

// The pool is created on first use and never destroyed; its workers are detached.
// Destroying it at exit would mean stopping and joining workers from a static
// destructor, which hangs if exit() runs while another thread is inside
// parallel_for and races the interpreter's teardown. Idle workers only wait on the
// pool's own condition variable, which therefore stays valid until the OS ends them.
std::atomic<Pool*> g_pool{nullptr};

#if defined(__unix__) || defined(__APPLE__)
// In a forked child only the forking thread exists: the workers are gone and the
// pool mutex may be held by one of them. The child abandons that pool, untouched,
// and creates a fresh one on first use.
void abandon_pool_in_child() {
  static Pool* abandoned = nullptr;
  Pool* inherited = g_pool.exchange(nullptr, std::memory_order_relaxed);
  if (inherited == nullptr) return;
  inherited->abandoned_before = abandoned;
  abandoned = inherited;
}
#endif

void register_fork_handler_once() {
#if defined(__unix__) || defined(__APPLE__)
  static std::atomic<bool> registered{false};
  if (!registered.exchange(true)) pthread_atfork(nullptr, nullptr, &abandon_pool_in_child);
#endif
}

Pool& pool() {
  Pool* existing = g_pool.load(std::memory_order_acquire);
  if (existing != nullptr) return *existing;
  // Registered before any pool is published, so no fork can copy a pool unhandled.
  register_fork_handler_once();
  auto* fresh = new Pool();
  if (g_pool.compare_exchange_strong(existing, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;  // another thread won the race
  return *existing;
}

}  // namespace

unsigned available_cpus() {
#if defined(__linux__)
  // cpu_set_t covers 1024 CPUs; sched_getaffinity fails with EINVAL on larger
  // machines, so grow the set until it fits.
  for (std::size_t cpus = 1024; cpus <= (std::size_t{1} << 16); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const std::size_t bytes = CPU_ALLOC_SIZE(cpus);
    const int status = sched_getaffinity(0, bytes, set);
    const int count = status == 0 ? CPU_COUNT_S(bytes, set) : 0;
    CPU_FREE(set);
    if (count > 0) return static_cast<unsigned>(count);
    if (status == 0) break;
  }
#endif
  return std::max(std::thread::hardware_concurrency(), 1u);
}

bool parallel_for(std::uint64_t total, std::uint64_t grain, unsigned threads, const Body& body,
                  const std::function<bool()>& poll, std::chrono::milliseconds poll_interval) {
  if (grain == 0) throw std::invalid_argument("parallel_for: grain must be at least 1");
  if (total == 0) return true;
  const std::uint64_t chunk_count = count_chunks(total, grain);
  PollTimer poll_timer(poll, poll_interval);
  if (threads <= 1 || chunk_count == 1) {
    for (std::uint64_t chunk = 0; chunk < chunk_count; ++chunk) {
      if (chunk > 0 && poll_timer.stop_requested()) return false;
      run_chunk(body, total, grain, chunk);
    }
    return true;
  }
  const auto helpers =
      static_cast<unsigned>(std::min<std::uint64_t>({threads - 1u, chunk_count - 1, kMaxWorkers}));
  Pool& shared = pool();
  shared.grow_to(helpers);
  Job job(body, total, grain, helpers);
  return shared.run(job, poll_timer);
}

}  // namespace fastinit::cpu
