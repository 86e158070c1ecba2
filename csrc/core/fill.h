// core/fill.h — the scalar reference fill: the oracle every fast path must equal.
//
// A fill writes, for every element of a box-shaped region of a virtual
// row-major tensor, the sample of that element's flat index in the full
// tensor (stream.h), in row-major order into a contiguous buffer. Nothing
// about the result depends on how the work is split.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fastinit/params.h"

namespace fastinit {

struct Region {
  std::vector<std::int64_t> full_shape;  // the virtual tensor
  std::vector<std::int64_t> start;       // first index of the box, per dimension
  std::vector<std::int64_t> extent;      // size of the box (and of the output), per dimension
};

// Checks that the region lies inside full_shape and that sizes fit in 63 bits;
// throws std::invalid_argument otherwise. Returns the number of output elements.
std::uint64_t checked_region_size(const Region& region);

// The region as runs: output elements (row-major in the region) map to runs of
// consecutive elements of the full tensor. Trailing dimensions the region spans
// whole merge with the one before them into longer runs.
class RegionRuns {
 public:
  explicit RegionRuns(const Region& region);

  std::uint64_t size() const { return size_; }
  std::uint64_t run_length() const { return run_length_; }
  std::uint64_t base() const { return base_; }
  const std::vector<std::uint64_t>& row_extent() const { return row_extent_; }
  const std::vector<std::uint64_t>& row_stride() const { return row_stride_; }

  // Calls fn(output_offset, full_index, count) for the pieces of runs that cover
  // output elements [begin, end), in order.
  template <class Fn>
  void for_each(std::uint64_t begin, std::uint64_t end, Fn fn) const {
    while (begin < end) {
      const std::uint64_t run = begin / run_length_;
      const std::uint64_t within = begin % run_length_;
      const std::uint64_t n = std::min(end - begin, run_length_ - within);
      fn(begin, run_start(run) + within, n);
      begin += n;
    }
  }

  std::uint64_t run_start(std::uint64_t run) const;  // full index of a run's first element

 private:
  std::uint64_t size_ = 0;
  std::uint64_t run_length_ = 1;
  std::uint64_t base_ = 0;                 // full index of the region's first element
  std::vector<std::uint64_t> row_extent_;  // the region's extent over the row dimensions
  std::vector<std::uint64_t> row_stride_;  // full-tensor strides of those dimensions
};

// Fills elements first .. first + count - 1 of the stream into dst
// (type decides the element type; kUInt32 writes raw words and ignores params).
void fill_range_reference(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                          std::uint64_t stream, std::uint64_t first, std::uint64_t count);

// Fills the region (row-major, contiguous) into dst through fill_range_reference.
void fill_region_reference(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                           std::uint64_t stream, const Region& region);

std::size_t output_itemsize(OutputType type);

// Test hooks into the scalar reference, element-wise over given inputs:
// the float32 sample of each word (element-wise transforms), our log, our erfinv,
// and our sin(pi x), cos(pi x).
void sample_words_reference(const std::uint32_t* words, float* out, std::size_t n,
                            const Params& params);
void log_reference(const float* x, float* out, std::size_t n);
void erfinv_reference(const float* x, float* out, std::size_t n);
void sincospi_reference(const float* x, float* sin_out, float* cos_out, std::size_t n);

}  // namespace fastinit
