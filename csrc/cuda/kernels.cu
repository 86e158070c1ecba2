// cuda/kernels.cu — the CUDA fill: the shared stream and transform headers, one
// thread per 16-byte group of output.
//
// Which element gets which word is fixed by stream.h; the launch geometry only
// decides which thread computes it. Group g of a fill covers stream elements
// [g G, g G + G) (G = 4 for 4- and 8-byte outputs, 8 for 2-byte ones, i.e. one
// or two Philox blocks), so a thread computes whole Philox blocks and, where the
// group lies inside the output and the address allows, writes it with 16-byte
// stores. Groups cut by the ends of a run are written element by element.
#include <cuda_runtime.h>

#include <cstring>
#include <stdexcept>

#include "cuda/cuda.h"
#include "cuda/runtime.h"
#include "fastinit/convert.h"
#include "fastinit/dispatch.h"
#include "fastinit/philox.h"
#include "fastinit/round.h"
#include "fastinit/stream.h"
#include "fastinit/transforms.h"

namespace fastinit {
namespace cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr unsigned kMaxRowDims = 32;

// The output as runs of consecutive stream elements (core/fill.h's RegionRuns):
// run r holds elements first(r) .. first(r) + run_length - 1, where first(r) =
// base + sum over d of digit_d(r) * row_stride[d], with digit_d the row-major
// digits of r over row_extent. A range fill is one run.
struct RunGrid {
  std::uint64_t base;
  std::uint64_t run_length;
  std::uint64_t runs;
  std::uint64_t groups_per_run;  // work items per run (>= the groups any run touches)
  unsigned row_dims;
  std::uint64_t row_extent[kMaxRowDims];
  std::uint64_t row_stride[kMaxRowDims];
};

__device__ __forceinline__ std::uint64_t run_first(const RunGrid& grid, std::uint64_t run) {
  std::uint64_t first = grid.base;
  for (unsigned d = grid.row_dims; d-- > 0;) {
    first += (run % grid.row_extent[d]) * grid.row_stride[d];
    run /= grid.row_extent[d];
  }
  return first;
}

template <class Out>
constexpr unsigned kGroupSize = sizeof(Out) == 2 ? 8 : 4;

// Element `lane` of a block; a pair transform's element also reads its partner's word.
template <Transform T, class Out>
__device__ __forceinline__ void sample(Out* dst, const Params& params, const Counter4x32& words,
                                       unsigned lane) {
  if constexpr (kIsPair<T>) {
    store(dst, polar_part<T>(params, words.v[lane & 2u], words.v[lane | 1u], (lane & 1u) != 0));
  } else {
    store(dst, transform<T>(params, signed_unit(words.v[lane])));
  }
}

template <Transform T>
__device__ __forceinline__ void sample(std::uint32_t* dst, const Params&, const Counter4x32& words,
                                       unsigned lane) {
  *dst = words.v[lane];  // raw stream words
}

template <class Out, unsigned G>
__device__ __forceinline__ void store_group(Out* dst, const Out (&values)[G]) {
  constexpr unsigned kChunks = sizeof(Out) * G / 16;
  static_assert(sizeof(Out) * G % 16 == 0, "a group is whole 16-byte chunks");
  uint4 chunks[kChunks];
  memcpy(chunks, values, sizeof chunks);
  uint4* out = reinterpret_cast<uint4*>(dst);
#pragma unroll
  for (unsigned c = 0; c < kChunks; ++c) out[c] = chunks[c];
}

template <Transform T, class Out>
__global__ void __launch_bounds__(kThreads)
    fill_kernel(Out* __restrict__ out, Params params, Key2x32 key, std::uint64_t rng_stream,
                RunGrid grid, std::uint64_t items) {
  constexpr unsigned G = kGroupSize<Out>;
  const std::uint64_t step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t item = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
       item < items; item += step) {
    std::uint64_t run = 0;
    std::uint64_t within = item;
    if (grid.runs > 1) {
      run = item / grid.groups_per_run;
      within = item - run * grid.groups_per_run;
    }
    const std::uint64_t first = run_first(grid, run);
    const std::uint64_t last = first + (grid.run_length - 1);
    const std::uint64_t group = first / G + within;
    if (group > last / G) continue;  // past this run's end (checked before g G can wrap)
    const std::uint64_t lo = group * G;
    Out* const run_out = out + run * grid.run_length;  // where element `first` goes

    Out values[G];
#pragma unroll
    for (unsigned b = 0; b < G / 4; ++b) {
      const Counter4x32 words = stream_block(key, rng_stream, lo / 4 + b);
#pragma unroll
      for (unsigned j = 0; j < 4; ++j) sample<T>(&values[4 * b + j], params, words, j);
    }
    if (lo >= first && lo + (G - 1) <= last &&
        reinterpret_cast<std::uintptr_t>(run_out + (lo - first)) % 16 == 0) {
      store_group(run_out + (lo - first), values);
    } else {
#pragma unroll
      for (unsigned j = 0; j < G; ++j) {
        const std::uint64_t element = lo + j;
        if (element >= first && element <= last) run_out[element - first] = values[j];
      }
    }
  }
}

// Blocks of one kernel that fit on a multiprocessor.
template <class Kernel>
int resident_blocks(Kernel kernel) {
  int blocks = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, 0),
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  return blocks > 0 ? blocks : 1;
}

// Enough blocks to fill every multiprocessor, no more: each thread then loops.
unsigned grid_blocks(int per_multiprocessor, int device, std::uint64_t items) {
  const std::uint64_t resident = static_cast<std::uint64_t>(per_multiprocessor) *
                                 static_cast<std::uint64_t>(multiprocessors(device));
  const std::uint64_t needed = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned>(needed < resident ? needed : resident);
}

template <Transform T, class Out>
void launch_fill(int device, cudaStream_t stream, void* dst, const Params& params,
                 std::uint64_t seed, std::uint64_t rng_stream, RunGrid grid) {
  constexpr unsigned G = kGroupSize<Out>;
  std::uint64_t items;
  if (grid.runs == 1) {
    items = (grid.base + (grid.run_length - 1)) / G - grid.base / G + 1;
    grid.groups_per_run = items;
  } else {
    grid.groups_per_run = (grid.run_length - 1) / G + 2;
    items = grid.runs * grid.groups_per_run;
  }
  auto* kernel = &fill_kernel<T, Out>;
  // N.B. asked once per kernel and process: GPUs of different architectures in one
  // process share the first answer, which only sizes the grid.
  static const int per_multiprocessor = resident_blocks(kernel);
  const unsigned blocks = grid_blocks(per_multiprocessor, device, items);
  kernel<<<blocks, kThreads, 0, stream>>>(static_cast<Out*>(dst), params, key_from_seed(seed),
                                          rng_stream, grid, items);
  check(cudaGetLastError(), "launch of the fill kernel");
}

void launch(int device, std::uintptr_t stream_handle, void* dst, OutputType type,
            const Params& params, std::uint64_t seed, std::uint64_t rng_stream,
            const RunGrid& grid) {
  if (grid.runs == 0 || grid.run_length == 0) return;
  DeviceScope scope(device);
  const cudaStream_t stream = as_stream(stream_handle);
  dispatch_fill(type, params.transform, [&](auto out, auto transform) {
    using Out = typename decltype(out)::type;
    launch_fill<decltype(transform)::value, Out>(device, stream, dst, params, seed, rng_stream,
                                                 grid);
  });
}

template <class Word>
__global__ void strided_kernel(Word* __restrict__ dst, Word value, std::uint64_t start,
                               std::uint64_t stride, std::uint64_t count) {
  const std::uint64_t step = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t k = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
       k < count; k += step) {
    dst[start + k * stride] = value;
  }
}

template <class Word>
void launch_strided(int device, cudaStream_t stream, void* dst, std::uint64_t bits,
                    std::uint64_t start, std::uint64_t stride, std::uint64_t count) {
  auto* kernel = &strided_kernel<Word>;
  static const int per_multiprocessor = resident_blocks(kernel);
  const unsigned blocks = grid_blocks(per_multiprocessor, device, count);
  kernel<<<blocks, kThreads, 0, stream>>>(static_cast<Word*>(dst), static_cast<Word>(bits), start,
                                          stride, count);
  check(cudaGetLastError(), "launch of the strided fill kernel");
}

template <unsigned R>
__global__ void philox_test_kernel(const Counter4x32* counters, const Key2x32* keys,
                                   Counter4x32* out, std::size_t n) {
  const std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = philox4x32<R>(counters[i], keys[i]);
}

}  // namespace

void fill_region(int device, std::uintptr_t stream, void* dst, OutputType type,
                 const Params& params, std::uint64_t seed, std::uint64_t rng_stream,
                 const Region& region) {
  const RegionRuns runs(region);
  if (runs.size() == 0) return;
  RunGrid grid{};
  grid.base = runs.base();
  grid.run_length = runs.run_length();
  grid.runs = runs.size() / runs.run_length();
  for (std::size_t d = 0; d < runs.row_extent().size(); ++d) {
    if (runs.row_extent()[d] == 1) continue;  // a single index: already in base
    if (grid.row_dims == kMaxRowDims) {
      throw std::invalid_argument("shape: CUDA fills take outputs with at most " +
                                  std::to_string(kMaxRowDims + 1) + " axes longer than 1");
    }
    grid.row_extent[grid.row_dims] = runs.row_extent()[d];
    grid.row_stride[grid.row_dims] = runs.row_stride()[d];
    ++grid.row_dims;
  }
  launch(device, stream, dst, type, params, seed, rng_stream, grid);
}

void fill_range(int device, std::uintptr_t stream, void* dst, OutputType type, const Params& params,
                std::uint64_t seed, std::uint64_t rng_stream, std::uint64_t first,
                std::uint64_t count) {
  if (count == 0) return;
  if (first > ~std::uint64_t{0} - (count - 1)) {
    throw std::invalid_argument("offset: the range passes element 2^64 - 1");
  }
  RunGrid grid{};
  grid.base = first;
  grid.run_length = count;
  grid.runs = 1;
  launch(device, stream, dst, type, params, seed, rng_stream, grid);
}

void fill_strided(int device, std::uintptr_t stream_handle, void* dst, std::size_t itemsize,
                  std::uint64_t bits, std::uint64_t start, std::uint64_t stride,
                  std::uint64_t count) {
  if (count == 0) return;
  DeviceScope scope(device);
  const cudaStream_t stream = as_stream(stream_handle);
  switch (itemsize) {
    case 2:
      return launch_strided<std::uint16_t>(device, stream, dst, bits, start, stride, count);
    case 4:
      return launch_strided<std::uint32_t>(device, stream, dst, bits, start, stride, count);
    case 8:
      return launch_strided<std::uint64_t>(device, stream, dst, bits, start, stride, count);
  }
  throw std::invalid_argument("itemsize: 2, 4 or 8 bytes");
}

void philox_kernel(int device, const std::uint32_t* counters, const std::uint32_t* keys,
                   std::uint32_t* out, std::size_t n, unsigned rounds) {
  if (rounds != 7 && rounds != 10) throw std::invalid_argument("rounds: compiled for 7 and 10");
  if (n == 0) return;
  const std::size_t counter_bytes = n * sizeof(Counter4x32);
  DeviceMemory memory(device, 2 * counter_bytes + n * sizeof(Key2x32));
  auto* base = static_cast<unsigned char*>(memory.data());
  auto* device_counters = reinterpret_cast<Counter4x32*>(base);
  auto* device_out = reinterpret_cast<Counter4x32*>(base + counter_bytes);
  auto* device_keys = reinterpret_cast<Key2x32*>(base + 2 * counter_bytes);
  copy_to_device(device, 0, device_counters, counters, counter_bytes);
  copy_to_device(device, 0, device_keys, keys, n * sizeof(Key2x32));
  DeviceScope scope(device);
  const auto blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  if (rounds == 7) {
    philox_test_kernel<7><<<blocks, kThreads>>>(device_counters, device_keys, device_out, n);
  } else {
    philox_test_kernel<10><<<blocks, kThreads>>>(device_counters, device_keys, device_out, n);
  }
  check(cudaGetLastError(), "launch of the Philox test kernel");
  copy_to_host(device, out, device_out, counter_bytes);
}

}  // namespace cuda
}  // namespace fastinit
