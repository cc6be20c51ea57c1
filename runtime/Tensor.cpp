//===- Tensor.cpp - Tensor helpers -----------------------------------------===//
#include "runtime/Tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace longctx {

int64_t numElements(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string shapeToString(const Shape &shape) {
  if (shape.empty())
    return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

void Tensor::Free::operator()(void *p) const { std::free(p); }

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  size_t n = bytes();
  size_t rounded = (n + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p)
    throw std::bad_alloc();
  std::memset(p, 0, rounded ? rounded : 64);
  storage_.reset(p);
}

Tensor::Tensor(const Tensor &other) : Tensor(other.dtype_, other.shape_) {
  std::memcpy(data(), other.data(), bytes());
}

Tensor &Tensor::operator=(const Tensor &other) {
  if (this != &other) {
    Tensor copy(other);
    *this = std::move(copy);
  }
  return *this;
}

} // namespace longctx
