// cpu/fill.h — the production fill: one target's kernel on all cores.
//
// The output is cut into chunks of whole elements; each chunk is filled by the
// range kernel independently, so the bits never depend on the thread count or on
// which thread filled what. Pages are first touched by the thread that fills them.
#pragma once

#include <cstdint>
#include <functional>

#include "core/fill.h"
#include "cpu/kernel.h"

namespace fastinit {
namespace cpu {

// Fills the region into dst with `fill` on up to `threads` threads (the caller
// included). `poll` runs on the calling thread every ~50 ms; if it returns true
// the fill stops early and this returns false (dst is then partly written).
bool fill_region(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                 std::uint64_t stream, const Region& region, RangeFill fill, unsigned threads,
                 const std::function<bool()>& poll);

// The same for elements first .. first + count - 1 of the stream (raw words too).
bool fill_range(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                std::uint64_t stream, std::uint64_t first, std::uint64_t count, RangeFill fill,
                unsigned threads, const std::function<bool()>& poll);

}  // namespace cpu
}  // namespace fastinit
