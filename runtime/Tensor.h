//===- Tensor.h - Non-owning views of dense row-major tensors --------------===//
#pragma once

#include "runtime/DType.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace longctx {

using Shape = std::vector<int64_t>;

int64_t numElements(const Shape &shape);
/// "2x3x4" (empty shape: "scalar").
std::string shapeToString(const Shape &shape);

/// A dense, row-major, contiguous tensor somewhere in memory it does not own.
struct TensorRef {
  DType dtype = DType::F32;
  Shape shape;
  void *data = nullptr;

  int64_t numElements() const { return longctx::numElements(shape); }
  size_t bytes() const { return size_t(numElements()) * dtypeSize(dtype); }
  int64_t rank() const { return int64_t(shape.size()); }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

/// An owning tensor (64-byte aligned storage), for inputs, outputs and tests.
class Tensor {
public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);
  Tensor(const Tensor &other);
  Tensor &operator=(const Tensor &other);
  Tensor(Tensor &&) noexcept = default;
  Tensor &operator=(Tensor &&) noexcept = default;

  TensorRef ref() const { return {dtype_, shape_, storage_.get()}; }
  DType dtype() const { return dtype_; }
  const Shape &shape() const { return shape_; }
  int64_t numElements() const { return longctx::numElements(shape_); }
  size_t bytes() const { return size_t(numElements()) * dtypeSize(dtype_); }
  void *data() const { return storage_.get(); }
  template <typename T> T *as() const { return static_cast<T *>(data()); }

private:
  struct Free {
    void operator()(void *p) const;
  };
  DType dtype_ = DType::F32;
  Shape shape_;
  std::unique_ptr<void, Free> storage_;
};

} // namespace longctx
