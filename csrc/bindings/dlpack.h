// bindings/dlpack.h — fastinit's DLPack importer and exporter, over the official
// ABI header (https://dmlc.github.io/dlpack/latest/, vendored in csrc/third_party).
//
// Only the layout matters: these structs are what producers (torch, CuPy, NumPy,
// JAX) put in the capsules that __dlpack__ returns. Capsules are named
// "dltensor" (DLManagedTensor, before DLPack 1.0) or "dltensor_versioned"
// (DLManagedTensorVersioned, 1.0 and later); a consumer renames the capsule it
// takes to "used_dltensor[_versioned]" and calls the deleter when done.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "dlpack/dlpack.h"

namespace fastinit {
namespace dlpack {

// The ABI itself comes from the vendored official header (csrc/third_party/dlpack).
using Version = DLPackVersion;
using Device = DLDevice;
using DataType = DLDataType;
using Tensor = DLTensor;
using ManagedTensor = DLManagedTensor;
using ManagedTensorVersioned = DLManagedTensorVersioned;

// A tensor taken from a producer's capsule: fastinit borrows it to fill it and
// returns it (calls the producer's deleter) when this object goes.
class Imported {
 public:
  explicit Imported(pybind11::capsule capsule);
  ~Imported();
  Imported(const Imported&) = delete;
  Imported& operator=(const Imported&) = delete;

  const Tensor& tensor() const;  // throws once released
  void release();                // calls the producer's deleter (once)
  std::uintptr_t data() const;   // first element: data + byte_offset
  bool read_only() const { return read_only_; }
  std::uint32_t major_version() const { return major_; }

 private:
  ManagedTensor* legacy_ = nullptr;
  ManagedTensorVersioned* versioned_ = nullptr;
  const Tensor* tensor_ = nullptr;
  bool read_only_ = false;
  std::uint32_t major_ = 0;
};

// A capsule exporting `data` (compact, row-major) to a consumer. `owner` keeps
// the memory alive until the consumer's deleter runs; it may run on any thread,
// with or without the GIL, so it holds no Python object.
pybind11::capsule export_tensor(void* data, Device device, DataType dtype,
                                const std::vector<std::int64_t>& shape,
                                std::shared_ptr<const void> owner, bool versioned, bool read_only);

void bind(pybind11::module_& m);

}  // namespace dlpack
}  // namespace fastinit
