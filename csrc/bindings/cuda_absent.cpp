// bindings/cuda_absent.cpp — the CUDA entry points of a build without CUDA.
#include <pybind11/pybind11.h>

#include "bindings/bindings.h"

namespace py = pybind11;

namespace fastinit {

void bind_cuda(py::module_& m) {
  m.attr("cuda_compiled") = false;
  m.def("query_cuda_status", [] {
    return py::make_tuple(false, 0,
                          "this fastinit was built without CUDA (no nvcc at build time, or "
                          "FASTINIT_CUDA=OFF)");
  });
}

}  // namespace fastinit
