#include "cpu/fill.h"

#include <algorithm>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu/parallel.h"

namespace fastinit {
namespace cpu {
namespace {

// Elements per chunk: about four chunks per thread for balance, but at most one
// transparent huge page (2 MiB), so two threads rarely fault on the same page (a
// fault zeroes all of it while the other waits), and at least 64 KiB.
std::uint64_t chunk_elements(std::uint64_t count, std::size_t itemsize, unsigned threads) {
  constexpr std::uint64_t kMinBytes = std::uint64_t{1} << 16;
  constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 21;
  const std::uint64_t share = count * itemsize / (4 * std::uint64_t{threads > 0 ? threads : 1});
  const std::uint64_t bytes = std::min(kMaxBytes, std::max(kMinBytes, share));
  return std::max<std::uint64_t>(1, bytes / itemsize);
}

// Ask for transparent huge pages on a large output: a fresh allocation then costs
// one fault per 2 MiB instead of one per 4 KiB. Advice only; failure is harmless.
void advise_huge_pages(void* dst, std::uint64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{1} << 21;
  if (bytes < 2 * kHuge) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(dst);
  const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t last = (begin + bytes) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)dst;
  (void)bytes;
#endif
}

}  // namespace

bool fill_region(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                 std::uint64_t stream, const Region& region, RangeFill fill, unsigned threads,
                 const std::function<bool()>& poll) {
  const RegionRuns runs(region);
  const std::size_t itemsize = output_itemsize(type);
  auto* out = static_cast<unsigned char*>(dst);
  advise_huge_pages(dst, runs.size() * itemsize);
  return parallel_for(
      runs.size(), chunk_elements(runs.size(), itemsize, threads), threads,
      [&](std::uint64_t begin, std::uint64_t end) {
        runs.for_each(begin, end, [&](std::uint64_t offset, std::uint64_t first, std::uint64_t n) {
          fill(out + offset * itemsize, type, params, seed, stream, first, n);
        });
      },
      poll);
}

bool fill_range(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                std::uint64_t stream, std::uint64_t first, std::uint64_t count, RangeFill fill,
                unsigned threads, const std::function<bool()>& poll) {
  const std::size_t itemsize = output_itemsize(type);
  auto* out = static_cast<unsigned char*>(dst);
  advise_huge_pages(dst, count * itemsize);
  return parallel_for(
      count, chunk_elements(count, itemsize, threads), threads,
      [&](std::uint64_t begin, std::uint64_t end) {
        fill(out + begin * itemsize, type, params, seed, stream, first + begin, end - begin);
      },
      poll);
}

}  // namespace cpu
}  // namespace fastinit
