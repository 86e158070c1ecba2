// bindings/bindings.h — the parts of the _core module defined outside module.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace fastinit {

// The CUDA backend (bindings/cuda.cpp), or its absence (bindings/cuda_absent.cpp).
void bind_cuda(pybind11::module_& m);

}  // namespace fastinit
