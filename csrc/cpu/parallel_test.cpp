// cpu/parallel_test.cpp — standalone checks of cpu/parallel.h, a ctest target:
//
//   cmake -S . -B build/tsan -G Ninja -DFASTINIT_PYTHON_MODULE=OFF -DFASTINIT_TESTS=ON
//         -DFASTINIT_CUDA=OFF -DFASTINIT_SANITIZE=thread    (or address, or nothing)
//   cmake --build build/tsan --target parallel_test && ctest --test-dir build/tsan
//
// .ci/run does exactly this under ThreadSanitizer and AddressSanitizer (+UBSan).
// Exits 0 when every check passes; prints the measured overheads.
#undef NDEBUG
#include "cpu/parallel.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using fastinit::cpu::parallel_for;
using Clock = std::chrono::steady_clock;
using Range = std::pair<std::uint64_t, std::uint64_t>;

const std::function<bool()> kNeverStop;  // empty: parallel_for never polls

// A value that depends on the index only (splitmix64's finalizer).
std::uint64_t value_of(std::uint64_t i, std::uint64_t seed) {
  std::uint64_t z = i + seed * 0x9E3779B97F4A7C15u;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  return z ^ (z >> 31);
}

std::vector<std::uint64_t> expected_values(std::uint64_t total, std::uint64_t seed) {
  std::vector<std::uint64_t> out(total);
  for (std::uint64_t i = 0; i < total; ++i) out[i] = value_of(i, seed);
  return out;
}

// Fills out[i] = value_of(i, seed) through parallel_for.
bool fill_values(std::vector<std::uint64_t>& out, std::uint64_t grain, unsigned threads,
                 std::uint64_t seed) {
  return parallel_for(
      out.size(), grain, threads,
      [&out, seed](std::uint64_t begin, std::uint64_t end) {
        for (std::uint64_t i = begin; i < end; ++i) out[i] = value_of(i, seed);
      },
      kNeverStop);
}

void busy_wait(std::chrono::microseconds how_long) {
  const Clock::time_point until = Clock::now() + how_long;
  while (Clock::now() < until) {
  }
}

void test_available_cpus() {
  const unsigned cpus = fastinit::cpu::available_cpus();
  assert(cpus >= 1);
  std::printf("available_cpus: %u\n", cpus);
}

void test_bad_grain() {
  bool threw = false;
  try {
    parallel_for(10, 0, 2, [](std::uint64_t, std::uint64_t) {}, kNeverStop);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  assert(threw);
}

// Every index is covered exactly once, by exactly the chunks the grain defines.
void test_coverage() {
  const std::uint64_t totals[] = {0, 1, 2, 5, 63, 64, 65, 1000, 4097};
  const std::uint64_t grains[] = {1, 3, 64, 1000, 5000};
  const unsigned thread_counts[] = {0, 1, 2, 3, 7, 64};
  int combos = 0;
  for (std::uint64_t total : totals) {
    for (std::uint64_t grain : grains) {
      for (unsigned threads : thread_counts) {
        std::vector<std::atomic<unsigned>> hits(total);
        std::mutex ranges_mutex;
        std::vector<Range> ranges;
        const bool finished = parallel_for(
            total, grain, threads,
            [&](std::uint64_t begin, std::uint64_t end) {
              for (std::uint64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
              std::lock_guard<std::mutex> lock(ranges_mutex);
              ranges.emplace_back(begin, end);
            },
            kNeverStop);
        assert(finished);
        for (const auto& hit : hits) assert(hit.load() == 1);
        std::sort(ranges.begin(), ranges.end());
        const std::uint64_t chunk_count = (total + grain - 1) / grain;
        assert(ranges.size() == chunk_count);
        for (std::uint64_t k = 0; k < chunk_count; ++k) {
          assert(ranges[k].first == k * grain);
          assert(ranges[k].second == std::min((k + 1) * grain, total));
        }
        ++combos;
      }
    }
  }
  std::printf("coverage: %d (total, grain, threads) combos ok\n", combos);
}

void test_same_result_whatever_threads() {
  const std::uint64_t total = 100003;
  const std::vector<std::uint64_t> expected = expected_values(total, 7);
  for (unsigned threads : {1u, 2u, 3u, 7u, 64u}) {
    for (std::uint64_t grain : {std::uint64_t{1}, std::uint64_t{97}, std::uint64_t{4096}}) {
      std::vector<std::uint64_t> out(total, 0);
      assert(fill_values(out, grain, threads, 7));
      assert(out == expected);
    }
  }
  std::printf("results: identical for threads 1, 2, 3, 7, 64\n");
}

// threads <= 1 and single-chunk jobs run on the caller; otherwise the caller works too.
void test_caller_works() {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<unsigned> chunks_elsewhere{0};
  const auto count_foreign = [&](std::uint64_t, std::uint64_t) {
    if (std::this_thread::get_id() != caller) chunks_elsewhere.fetch_add(1);
  };
  parallel_for(100, 1, 1, count_foreign, kNeverStop);
  parallel_for(100, 100, 8, count_foreign, kNeverStop);
  parallel_for(100, 1000, 8, count_foreign, kNeverStop);
  assert(chunks_elsewhere.load() == 0);

  std::atomic<unsigned> chunks_on_caller{0};
  parallel_for(
      100, 1, 2,
      [&](std::uint64_t, std::uint64_t) {
        if (std::this_thread::get_id() == caller) chunks_on_caller.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      },
      kNeverStop);
  assert(chunks_on_caller.load() > 0);
}

// poll returning true stops the job: parallel_for returns false, no chunk is claimed
// afterwards (only helpers that had already claimed one may still enter body), and
// nothing is still running when it returns.
void test_poll_stops() {
  for (unsigned threads : {1u, 2u, 3u, 7u}) {
    const std::uint64_t total = 100000;
    std::atomic<std::uint64_t> started{0};
    std::atomic<int> in_flight{0};
    std::atomic<bool> stopped{false};
    std::atomic<unsigned> entered_after_stop{0};
    std::atomic<std::uint64_t> started_at_stop{0};
    int polls = 0;
    const bool finished = parallel_for(
        total, 1, threads,
        [&](std::uint64_t, std::uint64_t) {
          in_flight.fetch_add(1);
          if (stopped.load()) entered_after_stop.fetch_add(1);
          started.fetch_add(1);
          busy_wait(std::chrono::microseconds(20));
          in_flight.fetch_sub(1);
        },
        [&] {
          if (++polls < 5) return false;
          started_at_stop.store(started.load());
          stopped.store(true);
          return true;
        },
        std::chrono::milliseconds(0));
    assert(!finished);
    assert(in_flight.load() == 0);
    assert(polls == 5);
    assert(entered_after_stop.load() <= threads - 1);
    assert(started.load() <= started_at_stop.load() + (threads - 1));
    assert(started.load() < total);
    const std::uint64_t started_on_return = started.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    assert(started.load() == started_on_return);
  }

  // With one thread it is exact: poll runs between chunks, once per chunk at most.
  int polls = 0;
  std::uint64_t chunks = 0;
  assert(!parallel_for(
      10, 1, 1, [&](std::uint64_t, std::uint64_t) { ++chunks; }, [&] { return ++polls == 3; },
      std::chrono::milliseconds(0)));
  assert(polls == 3 && chunks == 3);
  polls = 0;
  assert(parallel_for(
      10, 1, 1, [](std::uint64_t, std::uint64_t) {}, [&] { return ++polls < 0; },
      std::chrono::milliseconds(0)));
  assert(polls == 9);  // between chunks, never before the first or after the last

  // The interval is respected: 1 ms chunks polled every 20 ms.
  for (unsigned threads : {1u, 2u}) {
    polls = 0;
    const Clock::time_point start = Clock::now();
    assert(parallel_for(
        200, 1, threads,
        [](std::uint64_t, std::uint64_t) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        },
        [&] { return ++polls < 0; }, std::chrono::milliseconds(20)));
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    assert(polls >= 1);
    assert(polls <= elapsed.count() / 20 + 1);
    std::printf("poll: threads=%u, %d polls in %lld ms at a 20 ms interval\n", threads, polls,
                static_cast<long long>(elapsed.count()));
  }
  std::printf("poll: stops early, returns false, no chunk starts after\n");
}

void test_exceptions() {
  for (unsigned threads : {1u, 2u, 3u, 7u}) {
    std::atomic<int> in_flight{0};
    std::atomic<std::uint64_t> started{0};
    std::string message;
    try {
      parallel_for(
          10000, 1, threads,
          [&](std::uint64_t begin, std::uint64_t) {
            in_flight.fetch_add(1);
            started.fetch_add(1);
            busy_wait(std::chrono::microseconds(10));
            in_flight.fetch_sub(1);
            if (begin == 37) throw std::runtime_error("chunk 37");
          },
          kNeverStop);
    } catch (const std::runtime_error& error) {
      message = error.what();
      assert(in_flight.load() == 0);
    }
    assert(message == "chunk 37");
    assert(started.load() < 10000);
  }

  // Every chunk throws: exactly one exception comes back.
  for (unsigned threads : {2u, 7u}) {
    int caught = 0;
    try {
      parallel_for(
          1000, 1, threads,
          [](std::uint64_t begin, std::uint64_t) {
            throw std::runtime_error(std::to_string(begin));
          },
          kNeverStop);
    } catch (const std::runtime_error&) {
      ++caught;
    }
    assert(caught == 1);
  }

  // A throwing poll is rethrown the same way, after helpers have left.
  std::atomic<int> in_flight{0};
  bool caught = false;
  try {
    parallel_for(
        10000, 1, 3,
        [&](std::uint64_t, std::uint64_t) {
          in_flight.fetch_add(1);
          busy_wait(std::chrono::microseconds(10));
          in_flight.fetch_sub(1);
        },
        []() -> bool { throw std::logic_error("poll"); }, std::chrono::milliseconds(0));
  } catch (const std::logic_error&) {
    caught = true;
    assert(in_flight.load() == 0);
  }
  assert(caught);

  // The pool still works afterwards.
  std::vector<std::uint64_t> out(5000);
  assert(fill_values(out, 10, 4, 3));
  assert(out == expected_values(5000, 3));
  std::printf("exceptions: first one rethrown after in-flight chunks finished\n");
}

void test_concurrent_callers() {
  constexpr unsigned kCallers = 4;
  constexpr unsigned kCallsEach = 200;
  std::atomic<unsigned> failures{0};
  std::vector<std::thread> callers;
  for (unsigned caller = 0; caller < kCallers; ++caller) {
    callers.emplace_back([caller, &failures] {
      for (unsigned call = 0; call < kCallsEach; ++call) {
        const std::uint64_t seed = caller * 1000u + call;
        const std::uint64_t total = 1000 + (seed * 7919u) % 5000;
        const std::uint64_t grain = 1 + (seed * 31u) % 700;
        const unsigned threads = 1 + (caller + call) % 5;
        std::vector<std::uint64_t> out(total, 0);
        const bool finished = fill_values(out, grain, threads, seed);
        if (!finished || out != expected_values(total, seed)) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  assert(failures.load() == 0);
  std::printf("concurrency: %u threads x %u calls, all results correct\n", kCallers, kCallsEach);
}

#if defined(__SANITIZE_THREAD__)
// TSan cannot follow a child of a multi-threaded parent that starts threads
// ("dup thread with used id"), so under TSan the child stays single-threaded.
constexpr unsigned kChildThreads = 1;
#else
constexpr unsigned kChildThreads = 3;
#endif

// In the child: the result is right and, with threads > 1, a worker of the
// child's own pool ran some of the 2 ms chunks (the inherited workers do not exist).
bool child_pool_works() {
  std::vector<std::uint64_t> out(30000);
  if (!fill_values(out, 64, kChildThreads, 5) || out != expected_values(30000, 5)) return false;
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<unsigned> chunks_elsewhere{0};
  parallel_for(
      20, 1, kChildThreads,
      [&](std::uint64_t, std::uint64_t) {
        if (std::this_thread::get_id() != caller) chunks_elsewhere.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      },
      kNeverStop);
  return kChildThreads == 1 || chunks_elsewhere.load() > 0;
}

// Forks while the pool exists and another thread keeps it busy; each child must
// run its own parallel_for and exit 0 (alarm turns a deadlock into a failure).
void test_fork() {
  std::vector<std::uint64_t> warm(10000);
  assert(fill_values(warm, 100, 4, 1));

  std::atomic<bool> keep_busy{true};
  std::thread busy([&keep_busy] {
    std::vector<std::uint64_t> out(20000);
    while (keep_busy.load()) fill_values(out, 50, 3, 2);
  });
  constexpr int kForks = 5;
  for (int fork_index = 0; fork_index < kForks; ++fork_index) {
    const pid_t child = fork();
    assert(child >= 0);
    if (child == 0) {
      alarm(20);
      _exit(child_pool_works() ? 0 : 1);
    }
    int status = 0;
    assert(waitpid(child, &status, 0) == child);
    assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  keep_busy.store(false);
  busy.join();
  std::printf("fork: %d children ran parallel_for (threads=%u) and exited 0\n", kForks,
              kChildThreads);
}

struct Timing {
  double median_us;
  double p99_us;
};

// Times each call separately; `between` runs untimed before each one.
Timing time_calls(
    int calls, const std::function<void()>& call, const std::function<void()>& between = [] {}) {
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    between();
    const Clock::time_point start = Clock::now();
    call();
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  return {samples[samples.size() / 2], samples[samples.size() * 99 / 100]};
}

void report_overhead(const char* pool_state) {
  std::printf("-- overhead, %s\n", pool_state);
  std::atomic<std::uint64_t> sink{0};
  const auto tiny = [&sink](std::uint64_t begin, std::uint64_t) {
    sink.fetch_add(begin, std::memory_order_relaxed);
  };
  const int kCalls = 20000;
  const Timing inline_run = time_calls(kCalls, [&] { parallel_for(2, 1, 1, tiny, kNeverStop); });
  const Timing pooled = time_calls(kCalls, [&] { parallel_for(2, 1, 2, tiny, kNeverStop); });
  // With a pause between calls the worker has gone to sleep on the condition variable.
  const Timing pooled_spaced = time_calls(
      2000, [&] { parallel_for(2, 1, 2, tiny, kNeverStop); },
      [] { std::this_thread::sleep_for(std::chrono::microseconds(500)); });
  std::printf("2 tiny chunks: threads=1 median %.3f us p99 %.3f us\n", inline_run.median_us,
              inline_run.p99_us);
  std::printf("2 tiny chunks: threads=2 back-to-back median %.2f us p99 %.2f us\n",
              pooled.median_us, pooled.p99_us);
  std::printf("2 tiny chunks: threads=2 after 500 us idle median %.2f us p99 %.2f us\n",
              pooled_spaced.median_us, pooled_spaced.p99_us);

  // Two 100 us chunks: with a helper the pair should take ~100 us, not ~200 us.
  const auto heavy = [](std::uint64_t, std::uint64_t) {
    busy_wait(std::chrono::microseconds(100));
  };
  const Timing serial = time_calls(2000, [&] { parallel_for(2, 1, 1, heavy, kNeverStop); });
  const Timing split = time_calls(2000, [&] { parallel_for(2, 1, 2, heavy, kNeverStop); });
  std::printf("2 chunks x 100 us: threads=1 median %.1f us, threads=2 median %.1f us p99 %.1f us\n",
              serial.median_us, split.median_us, split.p99_us);
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress survives a failed assert
  test_available_cpus();
  // First, while the pool holds only the one worker that threads=2 needs.
  report_overhead("pool of 1 worker");
  test_bad_grain();
  test_coverage();
  test_same_result_whatever_threads();
  test_caller_works();
  test_poll_stops();
  test_exceptions();
  test_concurrent_callers();
  test_fork();
  report_overhead("pool grown to 63 workers by the threads=64 tests");
  std::printf("all checks passed\n");
  return 0;
}
