// bindings/module.cpp — the thin pybind11 layer over the core.
//
// Python validates arguments and allocates; this layer re-checks the buffer it
// is handed (writable, C-contiguous, item size), releases the GIL and fills.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <string>

#include "bindings/bindings.h"
#include "bindings/dlpack.h"
#include "core/fill.h"
#include "core/params.h"
#include "cpu/fill.h"
#include "cpu/kernel.h"
#include "cpu/parallel.h"
#include "fastinit/philox.h"

namespace py = pybind11;
using namespace fastinit;

namespace {

void* writable_buffer(py::array& out, OutputType type) {
  if (!out.writeable()) throw std::invalid_argument("out: array is read-only");
  if (!(out.flags() & py::array::c_style)) {
    throw std::invalid_argument("out: array must be C-contiguous");
  }
  if (static_cast<std::size_t>(out.itemsize()) != output_itemsize(type)) {
    throw std::invalid_argument("out: item size does not match the requested dtype");
  }
  return out.mutable_data();
}

// Lets Ctrl-C reach a long fill: the calling thread takes the GIL back every
// ~50 ms and runs Python's pending signal handlers; an exception stops the fill.
bool interrupted() {
  py::gil_scoped_acquire held;
  return PyErr_CheckSignals() != 0;
}

cpu::RangeFill kernel_for(const std::string& target) {
  return cpu::range_fill(target.empty() ? cpu::active_target() : target);
}

void fill(py::array out, std::uint32_t type, const Params& params, std::uint64_t seed,
          std::uint64_t stream, std::vector<std::int64_t> full_shape,
          std::vector<std::int64_t> start, unsigned threads, const std::string& target) {
  const auto output = static_cast<OutputType>(type);
  void* dst = writable_buffer(out, output);
  Region region{std::move(full_shape), std::move(start),
                std::vector<std::int64_t>(out.shape(), out.shape() + out.ndim())};
  const cpu::RangeFill kernel = kernel_for(target);
  bool finished;
  {
    py::gil_scoped_release unlocked;
    finished =
        cpu::fill_region(dst, output, params, seed, stream, region, kernel, threads, interrupted);
  }
  if (!finished) throw py::error_already_set();
}

void fill_range(py::array out, std::uint32_t type, const Params& params, std::uint64_t seed,
                std::uint64_t stream, std::uint64_t first, unsigned threads,
                const std::string& target) {
  const auto output = static_cast<OutputType>(type);
  void* dst = writable_buffer(out, output);
  const auto count = static_cast<std::uint64_t>(out.size());
  if (count > 0 && first > ~std::uint64_t{0} - (count - 1)) {
    throw std::invalid_argument("offset: the range passes element 2^64 - 1");
  }
  const cpu::RangeFill kernel = kernel_for(target);
  bool finished;
  {
    py::gil_scoped_release unlocked;
    finished = cpu::fill_range(dst, output, params, seed, stream, first, count, kernel, threads,
                               interrupted);
  }
  if (!finished) throw py::error_already_set();
}

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// Applies one element-wise reference function to a float32 array (test hook).
template <class Fn>
FloatArray map_floats(const FloatArray& x, Fn fn) {
  FloatArray out(x.request().shape);
  fn(x.data(), out.mutable_data(), static_cast<std::size_t>(x.size()));
  return out;
}

FloatArray sample_words(const py::array_t<std::uint32_t, py::array::c_style>& words,
                        const Params& params) {
  FloatArray out(words.request().shape);
  sample_words_reference(words.data(), out.mutable_data(), static_cast<std::size_t>(words.size()),
                         params);
  return out;
}

template <unsigned R>
std::array<std::uint32_t, 4> philox_rounds(const Counter4x32& c, const Key2x32& k) {
  const Counter4x32 r = philox4x32<R>(c, k);
  return {r.v[0], r.v[1], r.v[2], r.v[3]};
}

std::array<std::uint32_t, 4> philox(std::array<std::uint32_t, 4> counter,
                                    std::array<std::uint32_t, 2> key, unsigned rounds) {
  const Counter4x32 c{{counter[0], counter[1], counter[2], counter[3]}};
  const Key2x32 k{{key[0], key[1]}};
  switch (rounds) {
    case 7:
      return philox_rounds<7>(c, k);
    case 10:
      return philox_rounds<10>(c, k);
  }
  throw std::invalid_argument("rounds: compiled for 7 and 10");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastinit C++ core: Philox4x32-10 stream and transforms (scalar reference).";

  py::enum_<OutputType>(m, "OutputType")
      .value("float32", OutputType::kFloat32)
      .value("float64", OutputType::kFloat64)
      .value("float16", OutputType::kFloat16)
      .value("bfloat16", OutputType::kBFloat16)
      .value("uint32", OutputType::kUInt32);

  py::class_<Params>(m, "Params", "float32 constants of one transform (see params.h)")
      .def_property_readonly("transform",
                             [](const Params& p) {
                               switch (p.transform) {
                                 case Transform::kNormal:
                                   return "normal";
                                 case Transform::kPolarDisk:
                                   return "polar_disk";
                                 case Transform::kPolarTruncated:
                                   return "polar_truncated";
                                 default:
                                   return "uniform";
                               }
                             })
      .def_readonly("erf_scale", &Params::erf_scale)
      .def_readonly("erf_shift", &Params::erf_shift)
      .def_readonly("scale", &Params::scale)
      .def_readonly("shift", &Params::shift)
      .def_readonly("lo", &Params::lo)
      .def_readonly("hi", &Params::hi)
      .def_property_readonly("max_magnitude", &max_magnitude);

  m.def("uniform_params", &make_uniform_params, py::arg("low"), py::arg("high"));
  m.def("normal_params", &make_normal_params, py::arg("mean"), py::arg("std"));
  m.def("truncated_normal_params", &make_truncated_normal_params, py::arg("mean"), py::arg("std"),
        py::arg("lower"), py::arg("upper"));
  m.def("polar_disk_params", &make_polar_disk_params, py::arg("scale"));
  m.def("polar_truncated_params", &make_polar_truncated_params, py::arg("std"), py::arg("bound"));
  m.def("erf", &erf_double, py::arg("x"));
  m.def("philox4x32", &philox, py::arg("counter"), py::arg("key"), py::arg("rounds") = 10,
        "Random123's philox4x32_R on one counter block");
  m.def("sample_words", &sample_words, py::arg("words"), py::arg("params"),
        "float32 sample of each given word (scalar reference; for tests)");
  m.def(
      "log", [](const FloatArray& x) { return map_floats(x, log_reference); }, py::arg("x"),
      "fastinit's float32 log of positive normal floats (for tests)");
  m.def(
      "erfinv", [](const FloatArray& x) { return map_floats(x, erfinv_reference); }, py::arg("x"),
      "fastinit's float32 erfinv for |x| <= 1 - 2^-24 (for tests)");
  m.def(
      "sincospi",
      [](const FloatArray& x) {
        FloatArray sin_out(x.request().shape);
        FloatArray cos_out(x.request().shape);
        sincospi_reference(x.data(), sin_out.mutable_data(), cos_out.mutable_data(),
                           static_cast<std::size_t>(x.size()));
        return py::make_tuple(sin_out, cos_out);
      },
      py::arg("x"), "fastinit's float32 (sin(pi x), cos(pi x)) for |x| < 1 (for tests)");
  m.def("fill", &fill, py::arg("out"), py::arg("type"), py::arg("params"), py::arg("seed"),
        py::arg("stream"), py::arg("full_shape"), py::arg("start"), py::arg("threads"),
        py::arg("target") = "",
        "Fill `out` with the region of the full tensor that starts at `start`, on `threads` "
        "threads, with the active CPU target or the named one.");
  m.def("fill_range", &fill_range, py::arg("out"), py::arg("type"), py::arg("params"),
        py::arg("seed"), py::arg("stream"), py::arg("first"), py::arg("threads"),
        py::arg("target") = "",
        "Fill `out` (flat) with elements first .. first + out.size - 1 of the stream.");
  m.def(
      "fill_region_reference",
      [](py::array out, std::uint32_t type, const Params& params, std::uint64_t seed,
         std::uint64_t stream, std::vector<std::int64_t> full_shape,
         std::vector<std::int64_t> start) {
        const auto output = static_cast<OutputType>(type);
        void* dst = writable_buffer(out, output);
        Region region{std::move(full_shape), std::move(start),
                      std::vector<std::int64_t>(out.shape(), out.shape() + out.ndim())};
        py::gil_scoped_release unlocked;
        fill_region_reference(dst, output, params, seed, stream, region);
      },
      py::arg("out"), py::arg("type"), py::arg("params"), py::arg("seed"), py::arg("stream"),
      py::arg("full_shape"), py::arg("start"),
      "The scalar reference fill, one thread, no dispatch: the oracle (for tests).");
  m.def(
      "philox_blocks",
      [](const std::string& target, std::uint64_t seed, std::uint64_t stream,
         std::uint64_t first_block, std::uint64_t blocks) {
        py::array_t<std::uint32_t> out(static_cast<py::ssize_t>(4 * blocks));
        cpu::block_words(target)(out.mutable_data(), seed, stream, first_block, blocks);
        return out;
      },
      py::arg("target"), py::arg("seed"), py::arg("stream"), py::arg("first_block"),
      py::arg("blocks"), "Words of Philox blocks through one target's generator (for tests).");
  m.def("cpu_target", &cpu::active_target, "The SIMD target every fill uses.");
  m.def("compiled_targets", &cpu::compiled_targets, "CPU targets built into this module.");
  m.def("supported_targets", &cpu::supported_targets, "Compiled targets this CPU can run.");
  m.def("available_cpus", &cpu::available_cpus, "CPUs this process may run on (affinity).");
  dlpack::bind(m);
  bind_cuda(m);
}
