#include "core/fill.h"

#include <stdexcept>
#include <string>
#include <type_traits>

#include "fastinit/convert.h"
#include "fastinit/dispatch.h"
#include "fastinit/round.h"
#include "fastinit/stream.h"
#include "fastinit/transforms.h"

namespace fastinit {
namespace {

// Walks the stream from element `first`, one Philox block per four elements,
// entering and leaving blocks at any word; emit gets the block and the lane.
template <class Out, class Emit>
void walk_stream(Out* dst, std::uint64_t seed, std::uint64_t stream, std::uint64_t first,
                 std::uint64_t count, Emit emit) {
  const Key2x32 key = key_from_seed(seed);
  std::uint64_t index = first;
  while (count > 0) {
    const Counter4x32 words = stream_block(key, stream, index >> 2);
    for (unsigned lane = index & 3u; lane < 4 && count > 0; ++lane, ++index, --count) {
      emit(dst++, words, lane);
    }
  }
}

// Elements first .. first + count - 1: transformed samples, or raw words for uint32.
// A pair transform's element reads its own word and its partner's (lane ^ 1), which
// lies in the same block since pairs start at even elements.
template <Transform T, class Out>
void fill_samples(Out* dst, const Params& params, std::uint64_t seed, std::uint64_t stream,
                  std::uint64_t first, std::uint64_t count) {
  if constexpr (std::is_same_v<Out, std::uint32_t>) {
    walk_stream(
        dst, seed, stream, first, count,
        [](std::uint32_t* out, const Counter4x32& words, unsigned lane) { *out = words.v[lane]; });
  } else if constexpr (kIsPair<T>) {
    walk_stream(dst, seed, stream, first, count,
                [&params](Out* out, const Counter4x32& words, unsigned lane) {
                  store(out, polar_part<T>(params, words.v[lane & 2u], words.v[lane | 1u],
                                           (lane & 1u) != 0));
                });
  } else {
    walk_stream(dst, seed, stream, first, count,
                [&params](Out* out, const Counter4x32& words, unsigned lane) {
                  store(out, transform<T>(params, signed_unit(words.v[lane])));
                });
  }
}

}  // namespace

void sample_words_reference(const std::uint32_t* words, float* out, std::size_t n,
                            const Params& params) {
  if (params.transform == Transform::kPolarDisk || params.transform == Transform::kPolarTruncated) {
    throw std::invalid_argument("params: a pair transform samples pairs of words");
  }
  for (std::size_t i = 0; i < n; ++i) {
    const float x = signed_unit(words[i]);
    out[i] = params.transform == Transform::kNormal ? transform<Transform::kNormal>(params, x)
                                                    : transform<Transform::kUniform>(params, x);
  }
}

void log_reference(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = log_positive(x[i]);
}

void erfinv_reference(const float* x, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = erfinv(x[i]);
}

void sincospi_reference(const float* x, float* sin_out, float* cos_out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const SinCos sc = sincospi(x[i]);
    sin_out[i] = sc.sin;
    cos_out[i] = sc.cos;
  }
}

std::size_t output_itemsize(OutputType type) {
  switch (type) {
    case OutputType::kFloat32:
      return 4;
    case OutputType::kFloat64:
      return 8;
    case OutputType::kFloat16:
      return 2;
    case OutputType::kBFloat16:
      return 2;
    case OutputType::kUInt32:
      return 4;
  }
  throw std::invalid_argument("unknown output type");
}

void fill_range_reference(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                          std::uint64_t stream, std::uint64_t first, std::uint64_t count) {
  dispatch_fill(type, params.transform, [&](auto out, auto transform) {
    using Out = typename decltype(out)::type;
    fill_samples<decltype(transform)::value>(static_cast<Out*>(dst), params, seed, stream, first,
                                             count);
  });
}

std::uint64_t checked_region_size(const Region& region) {
  const std::size_t ndim = region.full_shape.size();
  if (region.start.size() != ndim || region.extent.size() != ndim) {
    throw std::invalid_argument("region: start and extent need one entry per dimension");
  }
  constexpr std::uint64_t kLimit = std::uint64_t{1} << 63;
  std::uint64_t full = 1;
  std::uint64_t size = 1;
  for (std::size_t d = 0; d < ndim; ++d) {
    const std::int64_t n = region.full_shape[d];
    const std::int64_t a = region.start[d];
    const std::int64_t e = region.extent[d];
    if (n < 0 || a < 0 || e < 0 || a > n || e > n - a) {
      throw std::invalid_argument("region: dimension " + std::to_string(d) +
                                  " lies outside the full shape");
    }
    const auto un = static_cast<std::uint64_t>(n);
    if (un != 0 && full > (kLimit - 1) / un)
      throw std::invalid_argument("shape: too many elements");
    full *= un;
    size *= static_cast<std::uint64_t>(e);
  }
  return full == 0 ? 0 : size;
}

RegionRuns::RegionRuns(const Region& region) : size_(checked_region_size(region)) {
  if (size_ == 0) return;
  const std::size_t ndim = region.full_shape.size();
  std::vector<std::uint64_t> stride(ndim, 1);  // row-major strides of the full tensor
  for (std::size_t d = ndim; d-- > 1;) {
    stride[d - 1] = stride[d] * static_cast<std::uint64_t>(region.full_shape[d]);
  }
  for (std::size_t d = 0; d < ndim; ++d) {
    base_ += static_cast<std::uint64_t>(region.start[d]) * stride[d];
  }
  std::size_t row_dims = ndim;  // runs vary over dimensions [0, row_dims)
  while (row_dims > 0) {
    const std::size_t d = --row_dims;
    run_length_ *= static_cast<std::uint64_t>(region.extent[d]);
    if (region.extent[d] != region.full_shape[d]) break;
  }
  for (std::size_t d = 0; d < row_dims; ++d) {
    row_extent_.push_back(static_cast<std::uint64_t>(region.extent[d]));
    row_stride_.push_back(stride[d]);
  }
}

std::uint64_t RegionRuns::run_start(std::uint64_t run) const {
  std::uint64_t index = base_;
  for (std::size_t d = row_extent_.size(); d-- > 0;) {
    index += (run % row_extent_[d]) * row_stride_[d];
    run /= row_extent_[d];
  }
  return index;
}

void fill_region_reference(void* dst, OutputType type, const Params& params, std::uint64_t seed,
                           std::uint64_t stream, const Region& region) {
  const RegionRuns runs(region);
  auto* out = static_cast<unsigned char*>(dst);
  const std::size_t itemsize = output_itemsize(type);
  runs.for_each(0, runs.size(), [&](std::uint64_t offset, std::uint64_t first, std::uint64_t n) {
    fill_range_reference(out + offset * itemsize, type, params, seed, stream, first, n);
  });
}

}  // namespace fastinit
