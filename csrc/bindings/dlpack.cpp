// bindings/dlpack.cpp — taking tensors from DLPack producers and giving ours out.
#include "bindings/dlpack.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>

namespace py = pybind11;

namespace fastinit {
namespace dlpack {
namespace {

constexpr std::int32_t kMaxDims = 64;  // more axes than any producer makes: a corrupt tensor
constexpr const char* kLegacyName = "dltensor";
constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kUsedLegacyName = "used_dltensor";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";

// What an exported capsule owns: the shape and strides it points to, and the memory.
struct Export {
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> strides;
  std::shared_ptr<const void> owner;
};

template <class Managed>
void delete_export(Managed* managed) {
  delete static_cast<Export*>(managed->manager_ctx);
  delete managed;
}

// Capsule destructor: a capsule nobody consumed still owns its tensor.
template <class Managed>
void release_unconsumed(PyObject* capsule, const char* name) {
  if (!PyCapsule_IsValid(capsule, name)) return;  // renamed "used_...": the consumer owns it
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
}

void release_unconsumed_legacy(PyObject* capsule) {
  release_unconsumed<ManagedTensor>(capsule, kLegacyName);
}
void release_unconsumed_versioned(PyObject* capsule) {
  release_unconsumed<ManagedTensorVersioned>(capsule, kVersionedName);
}

Tensor describe(void* data, Device device, DataType dtype, Export& context) {
  Tensor tensor{};
  tensor.data = data;
  tensor.device = device;
  tensor.ndim = static_cast<std::int32_t>(context.shape.size());
  tensor.dtype = dtype;
  tensor.shape = context.shape.data();
  tensor.strides = context.strides.data();
  tensor.byte_offset = 0;
  return tensor;
}

}  // namespace

Imported::Imported(py::capsule capsule) {
  PyObject* object = capsule.ptr();
  if (PyCapsule_IsValid(object, kVersionedName)) {
    versioned_ = static_cast<ManagedTensorVersioned*>(PyCapsule_GetPointer(object, kVersionedName));
    if (versioned_ == nullptr) throw py::error_already_set();
    major_ = versioned_->version.major;
    if (major_ != 1 || (versioned_->flags & DLPACK_FLAG_BITMASK_IS_COPIED) != 0) {
      // N.B. a newer major version may change the layout, and writes into a copy
      // would be lost: refuse, and hand the tensor back.
      const bool copied = major_ == 1;
      if (versioned_->deleter != nullptr) versioned_->deleter(versioned_);
      versioned_ = nullptr;
      PyCapsule_SetName(object, kUsedVersionedName);
      if (copied) {
        throw std::invalid_argument(
            "out: the producer exported a copy; fastinit must write "
            "the tensor itself");
      }
      throw std::invalid_argument("out: DLPack major version " + std::to_string(major_) +
                                  " is not supported (fastinit reads 1.x)");
    }
    tensor_ = &versioned_->dl_tensor;
    read_only_ = (versioned_->flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0;
    if (PyCapsule_SetName(object, kUsedVersionedName) != 0) throw py::error_already_set();
  } else if (PyCapsule_IsValid(object, kLegacyName)) {
    legacy_ = static_cast<ManagedTensor*>(PyCapsule_GetPointer(object, kLegacyName));
    if (legacy_ == nullptr) throw py::error_already_set();
    tensor_ = &legacy_->dl_tensor;
    if (PyCapsule_SetName(object, kUsedLegacyName) != 0) throw py::error_already_set();
  } else {
    throw std::invalid_argument(
        "out: __dlpack__ returned no unused 'dltensor' or 'dltensor_versioned' capsule");
  }
  // N.B. a producer is foreign code: nothing it describes is read before these checks.
  const Tensor& x = *tensor_;
  const char* problem = nullptr;
  if (x.ndim < 0 || x.ndim > kMaxDims) {
    problem = "ndim outside [0, 64]";
  } else if (x.ndim > 0 && x.shape == nullptr) {
    problem = "no shape";
  } else if (x.data == nullptr && x.byte_offset != 0) {
    // N.B. data() adds the offset: the null pointer would no longer look null.
    problem = "a null data pointer with a byte offset";
  } else {
    for (std::int32_t d = 0; d < x.ndim && problem == nullptr; ++d) {
      if (x.shape[d] < 0) problem = "a negative extent";
    }
  }
  if (problem != nullptr) {
    release();  // the destructor does not run for a constructor that throws
    throw std::invalid_argument(std::string("out: the DLPack tensor has ") + problem);
  }
}

Imported::~Imported() { release(); }

void Imported::release() {
  if (versioned_ != nullptr && versioned_->deleter != nullptr) versioned_->deleter(versioned_);
  if (legacy_ != nullptr && legacy_->deleter != nullptr) legacy_->deleter(legacy_);
  versioned_ = nullptr;
  legacy_ = nullptr;
  tensor_ = nullptr;
}

const Tensor& Imported::tensor() const {
  if (tensor_ == nullptr) throw std::invalid_argument("out: the DLPack tensor was released");
  return *tensor_;
}

std::uintptr_t Imported::data() const {
  return reinterpret_cast<std::uintptr_t>(tensor().data) +
         static_cast<std::uintptr_t>(tensor().byte_offset);
}

py::capsule export_tensor(void* data, Device device, DataType dtype,
                          const std::vector<std::int64_t>& shape, std::shared_ptr<const void> owner,
                          bool versioned, bool read_only) {
  auto context = std::make_unique<Export>();
  context->shape = shape;
  context->strides.assign(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) {
    context->strides[d - 1] = context->strides[d] * shape[d];
  }
  context->owner = std::move(owner);
  if (versioned) {
    auto managed = std::make_unique<ManagedTensorVersioned>();
    managed->version = Version{1, 0};
    managed->dl_tensor = describe(data, device, dtype, *context);
    managed->flags = read_only ? DLPACK_FLAG_BITMASK_READ_ONLY : 0;
    managed->manager_ctx = context.get();
    managed->deleter = &delete_export<ManagedTensorVersioned>;
    py::capsule capsule(managed.get(), kVersionedName, &release_unconsumed_versioned);
    context.release();
    managed.release();
    return capsule;
  }
  auto managed = std::make_unique<ManagedTensor>();
  managed->dl_tensor = describe(data, device, dtype, *context);
  managed->manager_ctx = context.get();
  managed->deleter = &delete_export<ManagedTensor>;
  py::capsule capsule(managed.get(), kLegacyName, &release_unconsumed_legacy);
  context.release();
  managed.release();
  return capsule;
}

namespace {

// A NumPy view of a borrowed host tensor; `self` (the Imported) is its base.
py::array host_array(const py::object& self, const py::dtype& dtype) {
  const Imported& imported = self.cast<const Imported&>();
  const Tensor& x = imported.tensor();
  if (x.device.device_type != kDLCPU && x.device.device_type != kDLCUDAHost) {
    throw std::invalid_argument("out: the DLPack tensor is not in host memory");
  }
  const auto itemsize = static_cast<std::int64_t>(dtype.itemsize());
  std::vector<py::ssize_t> shape(x.shape, x.shape + x.ndim);
  std::vector<py::ssize_t> strides(shape.size());
  std::int64_t compact = itemsize;
  for (std::size_t d = shape.size(); d-- > 0;) {
    strides[d] = x.strides != nullptr ? x.strides[d] * itemsize : compact;
    compact *= x.shape[d];
  }
  return py::array(dtype, shape, strides, reinterpret_cast<void*>(imported.data()), self);
}

// Keeps a Python object alive for a capsule's consumer, whose deleter may run
// on any thread: the reference is dropped under the GIL.
std::shared_ptr<const void> hold(py::object object) {
  return std::shared_ptr<const void>(object.release().ptr(), [](const void* held) {
    if (!Py_IsInitialized()) return;  // the interpreter is gone, and the object with it
    const PyGILState_STATE state = PyGILState_Ensure();
    Py_DECREF(static_cast<PyObject*>(const_cast<void*>(held)));
    PyGILState_Release(state);
  });
}

}  // namespace

void bind(py::module_& m) {
  // The codes Python needs, from the one header that defines them.
  m.attr("DLPACK_CPU") = static_cast<int>(kDLCPU);
  m.attr("DLPACK_CUDA") = static_cast<int>(kDLCUDA);
  m.attr("DLPACK_CUDA_HOST") = static_cast<int>(kDLCUDAHost);
  m.attr("DLPACK_CUDA_MANAGED") = static_cast<int>(kDLCUDAManaged);
  m.attr("DLPACK_FLOAT") = static_cast<int>(kDLFloat);
  m.attr("DLPACK_BFLOAT") = static_cast<int>(kDLBfloat);
  m.attr("DLPACK_UINT") = static_cast<int>(kDLUInt);
  m.attr("DLPACK_COMPLEX") = static_cast<int>(kDLComplex);
  m.attr("DLPACK_MAJOR_VERSION") = DLPACK_MAJOR_VERSION;
  m.def(
      "export_host",
      [](const py::array& array, std::uint8_t type_code, std::uint8_t bits, bool versioned) {
        if (!(array.flags() & py::array::c_style)) {
          throw std::invalid_argument("array: must be C-contiguous");
        }
        std::vector<std::int64_t> shape(array.shape(), array.shape() + array.ndim());
        void* data = const_cast<void*>(array.data());
        return export_tensor(data, Device{kDLCPU, 0}, DataType{type_code, bits, 1}, shape,
                             hold(array), versioned, !array.writeable());
      },
      py::arg("array"), py::arg("type_code"), py::arg("bits"), py::arg("versioned"),
      "A DLPack capsule of a C-contiguous host array (which it keeps alive).");
  py::class_<Imported>(m, "DLPackTensor",
                       "A tensor borrowed from a DLPack capsule; returned to its producer "
                       "by release() or when this object goes.")
      .def(py::init<py::capsule>(), py::arg("capsule"))
      .def_property_readonly("data", &Imported::data)
      .def_property_readonly(
          "device_type",
          [](const Imported& t) { return static_cast<int>(t.tensor().device.device_type); })
      .def_property_readonly("device_id",
                             [](const Imported& t) { return t.tensor().device.device_id; })
      .def_property_readonly("type_code", [](const Imported& t) { return t.tensor().dtype.code; })
      .def_property_readonly("bits", [](const Imported& t) { return t.tensor().dtype.bits; })
      .def_property_readonly("lanes", [](const Imported& t) { return t.tensor().dtype.lanes; })
      .def_property_readonly("shape",
                             [](const Imported& t) {
                               const Tensor& x = t.tensor();
                               return std::vector<std::int64_t>(x.shape, x.shape + x.ndim);
                             })
      .def_property_readonly(
          "strides",
          [](const Imported& t) -> py::object {
            const Tensor& x = t.tensor();
            if (x.strides == nullptr) return py::none();
            return py::cast(std::vector<std::int64_t>(x.strides, x.strides + x.ndim));
          })
      .def("release", &Imported::release, "Return the tensor to its producer now.")
      .def("host_array", &host_array, py::arg("dtype"),
           "A NumPy view of a host tensor, valid until release().")
      .def_property_readonly("read_only", &Imported::read_only)
      .def_property_readonly("major_version", &Imported::major_version);
}

}  // namespace dlpack
}  // namespace fastinit
