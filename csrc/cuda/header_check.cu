// cuda/header_check.cu — compile-only proof that the shared headers build for
// the device, with the same code the host reference runs. The CUDA backend
// proper arrives with its own kernels; this keeps the headers honest until then.
#include "fastinit/convert.h"
#include "fastinit/params.h"
#include "fastinit/round.h"
#include "fastinit/stream.h"
#include "fastinit/transforms.h"

namespace fastinit {
namespace cuda {

template <Transform T, class Out>
__global__ void fill_check(Out* out, Params params, std::uint64_t seed, std::uint64_t stream,
                           std::uint64_t count) {
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  const Counter4x32 words = stream_block(key_from_seed(seed), stream, i >> 2);
  store(out + i, transform<T>(params, signed_unit(words.v[i & 3])));
}

template __global__ void fill_check<Transform::kUniform, float>(float*, Params, std::uint64_t,
                                                                std::uint64_t, std::uint64_t);
template __global__ void fill_check<Transform::kNormal, float>(float*, Params, std::uint64_t,
                                                               std::uint64_t, std::uint64_t);
template __global__ void fill_check<Transform::kNormal, double>(double*, Params, std::uint64_t,
                                                                std::uint64_t, std::uint64_t);
template __global__ void fill_check<Transform::kNormal, Float16Bits>(
    Float16Bits*, Params, std::uint64_t, std::uint64_t, std::uint64_t);
template __global__ void fill_check<Transform::kNormal, BFloat16Bits>(
    BFloat16Bits*, Params, std::uint64_t, std::uint64_t, std::uint64_t);

}  // namespace cuda
}  // namespace fastinit
