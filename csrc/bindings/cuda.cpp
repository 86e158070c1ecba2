// bindings/cuda.cpp — the CUDA backend in Python: status, device memory that
// exports DLPack, and fills into the tensors they write.
//
// A fill takes what it writes — a tensor borrowed from a DLPack producer
// (DLPackTensor) or fastinit's own DeviceMemory — never a bare address, and checks
// it here, whatever Python checked before: a CUDA device, the dtype of the
// OutputType, exactly the extent it writes (row-major, compact), writable; for
// DeviceMemory, enough bytes. A mismatch is std::invalid_argument naming `out`
// (Python: ValueError), raised before any CUDA call. The checks run device last, so
// a host tensor reaches every other check (tests without a GPU).
#include "cuda/cuda.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/dlpack.h"
#include "core/fill.h"
#include "fastinit/dispatch.h"

namespace py = pybind11;

namespace fastinit {
namespace {

using Words = py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>;
using Extent = std::vector<std::int64_t>;

// Where a checked fill writes.
struct Written {
  int device;
  void* data;
};

// The DLPack data type of an output type's elements.
DLDataType dlpack_type(OutputType type) {
  return dispatch_fill(type, Transform::kUniform, [](auto out, auto) {
    using Out = typename decltype(out)::type;
    auto code = static_cast<std::uint8_t>(kDLFloat);
    if constexpr (std::is_same_v<Out, BFloat16Bits>) code = static_cast<std::uint8_t>(kDLBfloat);
    if constexpr (std::is_same_v<Out, std::uint32_t>) code = static_cast<std::uint8_t>(kDLUInt);
    return DLDataType{code, static_cast<std::uint8_t>(8 * sizeof(Out)), 1};
  });
}

std::string shape_text(const std::int64_t* shape, std::size_t ndim) {
  std::string text = "(";
  for (std::size_t d = 0; d < ndim; ++d) {
    text += std::to_string(shape[d]);
    if (d + 1 < ndim || ndim == 1) text += ",";
    if (d + 1 < ndim) text += " ";
  }
  return text + ")";
}

// Elements of `extent`, which must fit in 63 bits.
std::uint64_t element_count(const Extent& extent) {
  std::uint64_t count = 1;
  for (const std::int64_t dim : extent) {
    if (dim < 0) throw std::invalid_argument("out: a negative extent");
    if (dim != 0 &&
        count > static_cast<std::uint64_t>(INT64_MAX) / static_cast<std::uint64_t>(dim)) {
      throw std::invalid_argument("out: the extent has more than 2^63 - 1 elements");
    }
    count *= static_cast<std::uint64_t>(dim);
  }
  return count;
}

// A borrowed tensor, checked against the fill of `extent` elements of `type`.
Written written(const dlpack::Imported& out, OutputType type, const Extent& extent) {
  const dlpack::Tensor& x = out.tensor();  // throws once released
  const DLDataType want = dlpack_type(type);
  if (x.dtype.code != want.code || x.dtype.bits != want.bits || x.dtype.lanes != want.lanes) {
    throw std::invalid_argument("out: DLPack type (code " + std::to_string(x.dtype.code) + ", " +
                                std::to_string(x.dtype.bits) + " bits, " +
                                std::to_string(x.dtype.lanes) + " lanes) is not the fill's (code " +
                                std::to_string(want.code) + ", " + std::to_string(want.bits) +
                                " bits, 1 lane)");
  }
  const auto ndim = static_cast<std::size_t>(x.ndim);
  if (ndim != extent.size() || !std::equal(extent.begin(), extent.end(), x.shape)) {
    throw std::invalid_argument("out: shape " + shape_text(x.shape, ndim) + " is not the " +
                                shape_text(extent.data(), extent.size()) + " the fill writes");
  }
  const std::uint64_t count = element_count(extent);
  if (x.strides != nullptr && count != 0) {
    std::int64_t compact = 1;  // a size-1 axis may have any stride
    for (std::size_t d = ndim; d-- > 0;) {
      if (x.shape[d] != 1 && x.strides[d] != compact) {
        throw std::invalid_argument("out: not a row-major compact (C-contiguous) tensor");
      }
      compact *= x.shape[d];
    }
  }
  if (out.read_only()) throw std::invalid_argument("out: the DLPack tensor is read-only");
  if (x.data == nullptr && count != 0) throw std::invalid_argument("out: no data pointer");
  if (x.device.device_type != kDLCUDA && x.device.device_type != kDLCUDAManaged) {
    throw std::invalid_argument("out: DLPack device type " +
                                std::to_string(static_cast<int>(x.device.device_type)) +
                                " is not CUDA memory");
  }
  const int devices = cuda::status().device_count;
  if (x.device.device_id < 0 || x.device.device_id >= devices) {
    throw std::invalid_argument("out: cuda:" + std::to_string(x.device.device_id) +
                                " does not exist (" + std::to_string(devices) + " CUDA devices)");
  }
  return {x.device.device_id, reinterpret_cast<void*>(out.data())};
}

// fastinit's own memory, checked to hold `extent` elements of `type`.
Written written(const cuda::DeviceMemory& out, OutputType type, const Extent& extent) {
  const std::uint64_t count = element_count(extent);
  const std::size_t itemsize = output_itemsize(type);
  if (count > out.bytes() / itemsize) {
    throw std::invalid_argument("out: device memory of " + std::to_string(out.bytes()) +
                                " bytes cannot hold " + shape_text(extent.data(), extent.size()) +
                                " elements of " + std::to_string(itemsize) + " bytes");
  }
  return {out.device(), out.data()};
}

Extent shape_of(const py::array& array) {
  return Extent(array.shape(), array.shape() + array.ndim());
}

// The fills and the upload into a destination of type Out (DLPackTensor or DeviceMemory).
template <class Out>
void bind_writes(py::module_& m) {
  m.def(
      "cuda_fill",
      [](const Out& out, std::uintptr_t stream, std::uint32_t type, const Params& params,
         std::uint64_t seed, std::uint64_t rng_stream, Extent full_shape, Extent start,
         Extent extent) {
        const auto output = static_cast<OutputType>(type);
        const Written to = written(out, output, extent);
        Region region{std::move(full_shape), std::move(start), std::move(extent)};
        py::gil_scoped_release unlocked;
        cuda::fill_region(to.device, stream, to.data, output, params, seed, rng_stream, region);
      },
      py::arg("out"), py::arg("stream"), py::arg("type"), py::arg("params"), py::arg("seed"),
      py::arg("rng_stream"), py::arg("full_shape"), py::arg("start"), py::arg("extent"),
      "Enqueue the fill of the region (start, extent) of the full tensor into `out`.");
  m.def(
      "cuda_fill_range",
      [](const Out& out, std::uintptr_t stream, std::uint32_t type, const Params& params,
         std::uint64_t seed, std::uint64_t rng_stream, std::uint64_t first, const Extent& extent) {
        const auto output = static_cast<OutputType>(type);
        const Written to = written(out, output, extent);
        const std::uint64_t count = element_count(extent);
        py::gil_scoped_release unlocked;
        cuda::fill_range(to.device, stream, to.data, output, params, seed, rng_stream, first,
                         count);
      },
      py::arg("out"), py::arg("stream"), py::arg("type"), py::arg("params"), py::arg("seed"),
      py::arg("rng_stream"), py::arg("first"), py::arg("extent"),
      "Enqueue the fill of `out`, of shape `extent`, with elements first, first + 1, ...");
  m.def(
      "cuda_fill_strided",
      [](const Out& out, std::uintptr_t stream, std::uint32_t type, const Extent& extent,
         std::uint64_t bits, std::uint64_t start, std::uint64_t stride, std::uint64_t count) {
        const auto output = static_cast<OutputType>(type);
        const std::uint64_t size = element_count(extent);
        // The last element written, start + (count - 1) * stride, must lie inside out.
        const bool inside =
            count == 0 ||
            (start < size && (stride == 0 || count - 1 <= (size - 1 - start) / stride));
        if (!inside) {
          throw std::invalid_argument("out: the strided elements pass the end of the tensor");
        }
        const Written to = written(out, output, extent);
        py::gil_scoped_release unlocked;
        cuda::fill_strided(to.device, stream, to.data, output_itemsize(output), bits, start, stride,
                           count);
      },
      py::arg("out"), py::arg("stream"), py::arg("type"), py::arg("extent"), py::arg("bits"),
      py::arg("start"), py::arg("stride"), py::arg("count"),
      "Set flat elements start + k * stride (k < count) of `out` to the item `bits`.");
  m.def(
      "cuda_copy_to_device",
      [](const Out& out, std::uintptr_t stream, std::uint32_t type, const py::array& src) {
        const auto output = static_cast<OutputType>(type);
        if (!(src.flags() & py::array::c_style) ||
            static_cast<std::size_t>(src.itemsize()) != output_itemsize(output)) {
          throw std::invalid_argument("src: a C-contiguous array of the output type");
        }
        const Written to = written(out, output, shape_of(src));
        const void* host = src.data();
        const auto bytes = static_cast<std::size_t>(src.nbytes());
        py::gil_scoped_release unlocked;
        cuda::copy_to_device(to.device, stream, to.data, host, bytes);
      },
      py::arg("out"), py::arg("stream"), py::arg("type"), py::arg("src"),
      "Copy `src` into `out` (of its shape) and wait for the copy.");
}

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
  // Queries touch no device memory: query_*. The cuda_* calls write, and only
  // fastinit._fill makes them.
  m.def("query_cuda_status", [] {
    const cuda::Status s = cuda::status();
    return py::make_tuple(s.available, s.device_count, s.reason);
  });
  m.def("query_current_device", &cuda::current_device);

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
          py::arg("shape"), py::arg("type_code"), py::arg("bits"), py::arg("versioned"))
      .def(
          "order_consumer",
          [](const cuda::DeviceMemory& self, std::uintptr_t consumer) {
            cuda::order_streams(self.device(), 0, consumer);
          },
          py::arg("consumer"),
          "Make the `consumer` stream wait for the work enqueued so far on the legacy "
          "default stream of the memory's device (where fastinit fills it).")
      .def(
          "copy_to_host",
          [](const cuda::DeviceMemory& self, py::array dst) {
            if (!dst.writeable() || !(dst.flags() & py::array::c_style)) {
              throw std::invalid_argument("dst: a writable C-contiguous array");
            }
            const auto bytes = static_cast<std::size_t>(dst.nbytes());
            if (bytes > self.bytes()) {
              throw std::invalid_argument("dst: " + std::to_string(bytes) +
                                          " bytes, more than the memory's " +
                                          std::to_string(self.bytes()));
            }
            void* host = dst.mutable_data();
            py::gil_scoped_release unlocked;
            cuda::copy_to_host(self.device(), host, self.data(), bytes);
          },
          py::arg("dst"), "Copy the memory's first dst.nbytes bytes into `dst` (waits).");

  bind_writes<dlpack::Imported>(m);
  bind_writes<cuda::DeviceMemory>(m);
  m.def("cuda_synchronize", &cuda::synchronize, py::arg("device"), py::arg("stream"),
        py::call_guard<py::gil_scoped_release>());
  m.def("cuda_philox4x32", &philox_in_kernel, py::arg("device"), py::arg("counters"),
        py::arg("keys"), py::arg("rounds") = 10,
        "Random123's philox4x32_R of each (counter, key) row, computed in a kernel (tests).");
}

}  // namespace fastinit
