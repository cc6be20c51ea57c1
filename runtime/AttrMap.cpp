//===- AttrMap.cpp - Kernel attributes -------------------------------------===//
#include "runtime/AttrMap.h"

namespace longctx {

int64_t AttrMap::getInt(const std::string &name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return fallback;
  if (auto *v = std::get_if<int64_t>(&it->second))
    return *v;
  return fallback;
}

double AttrMap::getFloat(const std::string &name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return fallback;
  if (auto *v = std::get_if<double>(&it->second))
    return *v;
  if (auto *v = std::get_if<int64_t>(&it->second))
    return double(*v);
  return fallback;
}

std::string AttrMap::getString(const std::string &name, std::string fallback) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return fallback;
  if (auto *v = std::get_if<std::string>(&it->second))
    return *v;
  return fallback;
}

std::vector<int64_t> AttrMap::getInts(const std::string &name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return {};
  if (auto *v = std::get_if<std::vector<int64_t>>(&it->second))
    return *v;
  return {};
}

std::vector<double> AttrMap::getFloats(const std::string &name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    return {};
  if (auto *v = std::get_if<std::vector<double>>(&it->second))
    return *v;
  return {};
}

} // namespace longctx
