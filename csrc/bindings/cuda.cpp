// bindings/cuda.cpp — the CUDA backend in Python: status, device memory that
// exports DLPack, and fills into device pointers that Python has checked.
#include "cuda/cuda.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <utility>

#include "bindings/bindings.h"
#include "bindings/dlpack.h"
#include "core/fill.h"

namespace py = pybind11;

namespace fastinit {
namespace {

using Words = py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>;

void* device_pointer(std::uintptr_t address) { return reinterpret_cast<void*>(address); }

Words philox_in_kernel(int device, const Words& counters, const Words& keys, unsigned rounds) {
  if (counters.ndim() != 2 || counters.shape(1) != 4 || keys.ndim() != 2 || keys.shape(1) != 2 ||
      keys.shape(0) != counters.shape(0)) {
    throw std::invalid_argument("counters: shape (n, 4) and keys: shape (n, 2)");
  }
  Words out({counters.shape(0), py::ssize_t{4}});
  cuda::philox_kernel(device, counters.data(), keys.data(), out.mutable_data(),
                      static_cast<std::size_t>(counters.shape(0)), rounds);
  return out;
}

}  // namespace

void bind_cuda(py::module_& m) {
  py::register_exception<cuda::CudaError>(m, "CudaError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr raised) {
    try {
      if (raised) std::rethrow_exception(raised);
    } catch (const cuda::OutOfMemory& error) {
      PyErr_SetString(PyExc_MemoryError, error.what());
    }
  });
  m.attr("cuda_compiled") = true;
  m.def("cuda_status", [] {
    const cuda::Status s = cuda::status();
    return py::make_tuple(s.available, s.device_count, s.reason);
  });
  m.def("cuda_current_device", &cuda::current_device);

  py::class_<cuda::DeviceMemory, std::shared_ptr<cuda::DeviceMemory>>(
      m, "DeviceMemory", "cudaMalloc'd memory, freed when the last user (DLPack included) goes")
      .def(py::init<int, std::size_t>(), py::arg("device"), py::arg("nbytes"))
      .def_property_readonly(
          "ptr",
          [](const cuda::DeviceMemory& d) { return reinterpret_cast<std::uintptr_t>(d.data()); })
      .def_property_readonly("device", &cuda::DeviceMemory::device)
      .def_property_readonly("nbytes", &cuda::DeviceMemory::bytes)
      .def(
          "dlpack",
          [](const std::shared_ptr<cuda::DeviceMemory>& self, std::vector<std::int64_t> shape,
             std::uint8_t type_code, std::uint8_t bits, bool versioned) {
            return dlpack::export_tensor(self->data(), dlpack::Device{kDLCUDA, self->device()},
                                         dlpack::DataType{type_code, bits, 1}, shape, self,
                                         versioned, false);
          },
          py::arg("shape"), py::arg("type_code"), py::arg("bits"), py::arg("versioned"));

  m.def(
      "cuda_fill",
      [](int device, std::uintptr_t stream, std::uintptr_t out, std::uint32_t type,
         const Params& params, std::uint64_t seed, std::uint64_t rng_stream,
         std::vector<std::int64_t> full_shape, std::vector<std::int64_t> start,
         std::vector<std::int64_t> extent) {
        Region region{std::move(full_shape), std::move(start), std::move(extent)};
        py::gil_scoped_release unlocked;
        cuda::fill_region(device, stream, device_pointer(out), static_cast<OutputType>(type),
                          params, seed, rng_stream, region);
      },
      py::arg("device"), py::arg("stream"), py::arg("out"), py::arg("type"), py::arg("params"),
      py::arg("seed"), py::arg("rng_stream"), py::arg("full_shape"), py::arg("start"),
      py::arg("extent"), "Enqueue the fill of a region into device memory at `out`.");
  m.def(
      "cuda_fill_range",
      [](int device, std::uintptr_t stream, std::uintptr_t out, std::uint32_t type,
         const Params& params, std::uint64_t seed, std::uint64_t rng_stream, std::uint64_t first,
         std::uint64_t count) {
        py::gil_scoped_release unlocked;
        cuda::fill_range(device, stream, device_pointer(out), static_cast<OutputType>(type), params,
                         seed, rng_stream, first, count);
      },
      py::arg("device"), py::arg("stream"), py::arg("out"), py::arg("type"), py::arg("params"),
      py::arg("seed"), py::arg("rng_stream"), py::arg("first"), py::arg("count"));
  m.def(
      "cuda_fill_strided",
      [](int device, std::uintptr_t stream, std::uintptr_t out, std::size_t itemsize,
         std::uint64_t bits, std::uint64_t start, std::uint64_t stride, std::uint64_t count) {
        py::gil_scoped_release unlocked;
        cuda::fill_strided(device, stream, device_pointer(out), itemsize, bits, start, stride,
                           count);
      },
      py::arg("device"), py::arg("stream"), py::arg("out"), py::arg("itemsize"), py::arg("bits"),
      py::arg("start"), py::arg("stride"), py::arg("count"));
  m.def(
      "cuda_copy_to_host",
      [](int device, std::uintptr_t src, py::array dst) {
        if (!dst.writeable() || !(dst.flags() & py::array::c_style)) {
          throw std::invalid_argument("dst: a writable C-contiguous array");
        }
        void* host = dst.mutable_data();
        const auto bytes = static_cast<std::size_t>(dst.nbytes());
        py::gil_scoped_release unlocked;
        cuda::copy_to_host(device, host, device_pointer(src), bytes);
      },
      py::arg("device"), py::arg("src"), py::arg("dst"));
  m.def(
      "cuda_copy_to_device",
      [](int device, std::uintptr_t stream, std::uintptr_t dst, py::array src) {
        if (!(src.flags() & py::array::c_style)) {
          throw std::invalid_argument("src: a C-contiguous array");
        }
        const void* host = src.data();
        const auto bytes = static_cast<std::size_t>(src.nbytes());
        py::gil_scoped_release unlocked;
        cuda::copy_to_device(device, stream, device_pointer(dst), host, bytes);
      },
      py::arg("device"), py::arg("stream"), py::arg("dst"), py::arg("src"));
  m.def("cuda_order_streams", &cuda::order_streams, py::arg("device"), py::arg("producer"),
        py::arg("consumer"), "Make `consumer` wait for the work enqueued on `producer`.");
  m.def("cuda_synchronize", &cuda::synchronize, py::arg("device"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def("cuda_philox4x32", &philox_in_kernel, py::arg("device"), py::arg("counters"),
        py::arg("keys"), py::arg("rounds") = 10,
        "Random123's philox4x32_R of each (counter, key) row, computed in a kernel (tests).");
}

}  // namespace fastinit
