//===- AttrMap.h - Kernel attributes, independent of MLIR ------------------===//
//
// The attributes a scheduled op carries in the artifact (axis, perm, epsilon,
// ...). The compiler builds them from MLIR attributes; the runtime reads them
// from the manifest. Lookups of a missing or mistyped attribute return a
// default or report an error instead of throwing.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace longctx {

using AttrValue = std::variant<int64_t, double, std::string,
                               std::vector<int64_t>, std::vector<double>>;

class AttrMap {
public:
  void set(const std::string &name, AttrValue value) {
    values_[name] = std::move(value);
  }
  bool has(const std::string &name) const { return values_.count(name) != 0; }
  const std::map<std::string, AttrValue> &values() const { return values_; }

  /// Typed getters: the stored value, or `fallback` when absent or of another
  /// type (an int is accepted where a double is asked for).
  int64_t getInt(const std::string &name, int64_t fallback = 0) const;
  double getFloat(const std::string &name, double fallback = 0) const;
  std::string getString(const std::string &name, std::string fallback = {}) const;
  std::vector<int64_t> getInts(const std::string &name) const;
  std::vector<double> getFloats(const std::string &name) const;

  bool operator==(const AttrMap &other) const { return values_ == other.values_; }

private:
  std::map<std::string, AttrValue> values_;
};

} // namespace longctx
