// fastinit/dispatch.h — the one switch from a fill's runtime choices to template arguments.
//
// Guarantee: dispatch_fill(type, transform, visit) calls visit exactly once, with
// OutputTag<Out>{} for the element type Out that `type` names and TransformTag<T>{}
// for the transform `transform` names, or throws std::invalid_argument for a value
// outside the enums. Raw words (OutputType::kUInt32) take no transform: they are
// visited with TransformTag<Transform::kUniform>, which such a fill ignores. The
// reference fill (core/fill.cpp), the SIMD kernel (cpu/kernel.cpp) and the CUDA
// launcher (cuda/kernels.cu) all go through here, so adding an output type is one
// case below plus a store() for it (round.h, cpu/simd.h). The pair transforms (complex
// values as float pairs, params.h) are visited like the others; every fill routes them
// to polar_part (transforms.h), which reads an element's word and its partner's.
#pragma once

#include <cstdint>
#include <stdexcept>

#include "fastinit/params.h"
#include "fastinit/round.h"

namespace fastinit {

template <class Out>
struct OutputTag {
  using type = Out;
};

template <Transform T>
struct TransformTag {
  static constexpr Transform value = T;
};

template <class Out, class Visit>
decltype(auto) dispatch_transform(Transform transform, Visit&& visit) {
  switch (transform) {
    case Transform::kUniform:
      return visit(OutputTag<Out>{}, TransformTag<Transform::kUniform>{});
    case Transform::kNormal:
      return visit(OutputTag<Out>{}, TransformTag<Transform::kNormal>{});
    case Transform::kPolarDisk:
      return visit(OutputTag<Out>{}, TransformTag<Transform::kPolarDisk>{});
    case Transform::kPolarTruncated:
      return visit(OutputTag<Out>{}, TransformTag<Transform::kPolarTruncated>{});
  }
  throw std::invalid_argument("unknown transform");
}

template <class Visit>
decltype(auto) dispatch_fill(OutputType type, Transform transform, Visit&& visit) {
  switch (type) {
    case OutputType::kFloat32:
      return dispatch_transform<float>(transform, visit);
    case OutputType::kFloat64:
      return dispatch_transform<double>(transform, visit);
    case OutputType::kFloat16:
      return dispatch_transform<Float16Bits>(transform, visit);
    case OutputType::kBFloat16:
      return dispatch_transform<BFloat16Bits>(transform, visit);
    case OutputType::kUInt32:
      return visit(OutputTag<std::uint32_t>{}, TransformTag<Transform::kUniform>{});
  }
  throw std::invalid_argument("unknown output type");
}

}  // namespace fastinit
