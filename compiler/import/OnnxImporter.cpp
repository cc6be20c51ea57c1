//===- OnnxImporter.cpp - ONNX model -> `lc` dialect: the graph walk -------===//
#include "compiler/import/OnnxImporter.h"
#include "compiler/import/NodeConversion.h"
#include "compiler/import/NodeLocation.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Verifier.h"

#include <set>

using namespace mlir;

namespace longctx {
namespace onnx_import {

//===----------------------------------------------------------------------===//
// NodeContext
//===----------------------------------------------------------------------===//

LogicalResult NodeContext::requireInputs(size_t min, size_t max) {
  size_t present = 0;
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (i < min && !inputs_[i])
      return error("required input " + Twine(i) + " is missing");
    else if (inputs_[i])
      present = i + 1;
  if (inputs_.size() < min)
    return error("expects at least " + Twine(min) + " inputs, got " + Twine(inputs_.size()));
  if (present > max)
    return error("expects at most " + Twine(max) + " inputs, got " + Twine(present));
  return success();
}

FailureOr<SmallVector<int64_t>> NodeContext::constantInts(size_t i, StringRef what) {
  DenseElementsAttr attr;
  if (!hasInput(i) || !matchPattern(input(i), m_Constant(&attr)))
    return error(Twine(what) + " (input " + Twine(i) + ") must be a compile-time constant; " +
                 "pin dynamic dimensions with --shape so shape computations fold");
  if (!attr.getElementType().isSignlessInteger())
    return error(Twine(what) + " must be an integer tensor");
  SmallVector<int64_t> values;
  for (const APInt &v : attr.getValues<APInt>())
    values.push_back(v.getSExtValue());
  return values;
}

FailureOr<double> NodeContext::constantScalar(size_t i, StringRef what) {
  DenseElementsAttr attr;
  if (!hasInput(i) || !matchPattern(input(i), m_Constant(&attr)))
    return error(Twine(what) + " (input " + Twine(i) + ") must be a compile-time constant");
  if (attr.getNumElements() != 1)
    return error(Twine(what) + " must hold exactly one value");
  if (isa<FloatType>(attr.getElementType()))
    return (*attr.getValues<APFloat>().begin()).convertToDouble();
  return double((*attr.getValues<APInt>().begin()).getSExtValue());
}

int64_t NodeContext::intAttr(StringRef name, int64_t fallback) const {
  const Attribute *a = attr(name);
  return a && a->kind == Attribute::Kind::Int ? a->i : fallback;
}

double NodeContext::floatAttr(StringRef name, double fallback) const {
  const Attribute *a = attr(name);
  if (a && a->kind == Attribute::Kind::Float)
    return a->f;
  if (a && a->kind == Attribute::Kind::Int)
    return double(a->i);
  return fallback;
}

std::optional<std::vector<int64_t>> NodeContext::intsAttr(StringRef name) const {
  const Attribute *a = attr(name);
  if (!a || a->kind != Attribute::Kind::Ints)
    return std::nullopt;
  return a->ints;
}

FailureOr<int64_t> NodeContext::normalizeAxis(int64_t axis, int64_t rank) {
  int64_t normalized = axis < 0 ? axis + rank : axis;
  if (normalized < 0 || normalized >= rank)
    return error("axis " + Twine(axis) + " is out of range for rank " + Twine(rank));
  return normalized;
}

FailureOr<Value> NodeContext::reshape(Value v, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getShape() == shape)
    return v;
  return createTyped<lc::ReshapeOp>(RankedTensorType::get(shape, type.getElementType()), v);
}

FailureOr<Value> NodeContext::finish(Operation *op) {
  if (failed(mlir::verify(op))) {
    op->erase();
    return failure();
  }
  SmallVector<OpFoldResult, 1> folded;
  if (op->getNumResults() == 1 && succeeded(op->fold(folded)) && folded.size() == 1) {
    Value result;
    if (auto value = dyn_cast<Value>(folded.front())) {
      if (value == op->getResult(0))
        return value; // folded in place (e.g. composed transposes)
      result = value;
    }
    else if (auto elements = dyn_cast<ElementsAttr>(cast<mlir::Attribute>(folded.front())))
      result = builder.create<lc::ConstantOp>(loc, op->getResult(0).getType(), elements);
    if (result && result.getType() == op->getResult(0).getType()) {
      op->erase();
      return result;
    }
  }
  return op->getResult(0);
}

//===----------------------------------------------------------------------===//
// Types and constants
//===----------------------------------------------------------------------===//

Type elementTypeFor(MLIRContext *context, DType dtype) {
  Builder b(context);
  switch (dtype) {
  case DType::F32: return b.getF32Type();
  case DType::F64: return b.getF64Type();
  case DType::F16: return b.getF16Type();
  case DType::BF16: return b.getBF16Type();
  case DType::I64: return b.getI64Type();
  case DType::I32: return b.getI32Type();
  case DType::I8:
  case DType::U8: return b.getIntegerType(8);
  case DType::Bool: return b.getI1Type();
  }
  return {};
}

DenseElementsAttr toElementsAttr(MLIRContext *context, const TensorData &data) {
  auto type = RankedTensorType::get(data.shape, elementTypeFor(context, data.dtype));
  const Tensor &t = *data.payload;
  if (data.dtype == DType::Bool) {
    SmallVector<bool> values(t.as<uint8_t>(), t.as<uint8_t>() + t.numElements());
    return DenseElementsAttr::get(type, values);
  }
  bool splat = false;
  ArrayRef<char> raw(static_cast<const char *>(t.data()), t.bytes());
  if (!DenseElementsAttr::isValidRawBuffer(type, raw, splat))
    return {};
  return DenseElementsAttr::getFromRawBuffer(type, raw);
}

//===----------------------------------------------------------------------===//
// The graph walk
//===----------------------------------------------------------------------===//

namespace {

class GraphImporter {
public:
  GraphImporter(MLIRContext &context, const Model &model, const ImportOptions &options,
                WeightStore &weights, std::vector<std::string> &errors)
      : context_(context), model_(model), options_(options), weights_(weights),
        errors_(errors), builder_(&context) {}

  OwningOpRef<ModuleOp> run();

private:
  void error(const std::string &where, const std::string &why) {
    errors_.push_back(model_.path + ":" + where + ": " + why);
  }
  Location nodeLoc(const std::string &name) {
    return NameLoc::get(StringAttr::get(&context_, name),
                        FileLineColLoc::get(&context_, model_.path, 0, 0));
  }
  bool checkOpsets();
  bool checkSupport();
  std::optional<RankedTensorType> inputType(const ValueInfo &info);
  bool convertNode(const Node &node);
  void checkDeclaredType(const ValueInfo &info, Value value, const std::string &where);

  MLIRContext &context_;
  const Model &model_;
  const ImportOptions &options_;
  WeightStore &weights_;
  std::vector<std::string> &errors_;
  OpBuilder builder_;
  std::map<std::string, Value> values_;
  /// Values whose producer failed: their users are skipped, not re-reported.
  std::set<std::string> poisoned_;
};

bool GraphImporter::checkOpsets() {
  int64_t opset = model_.opsetFor("");
  if (opset == 0 && !model_.opsets.count(""))
    return true; // No default-domain import: only custom ops; checked per node.
  if (opset < 13 || opset > 18) {
    error("opset_import", "ONNX opset " + std::to_string(opset) +
                              " is not supported (13-18 are): re-export with opset_version=17");
    return false;
  }
  return true;
}

/// Lists every unsupported node at once, like onnx-mlir's --onnx-op-stats.
bool GraphImporter::checkSupport() {
  const auto &converters = nodeConverters();
  bool ok = true;
  for (const Node &node : model_.nodes) {
    std::string domain = node.domain.empty() ? "ai.onnx" : node.domain;
    if (node.hasSubgraph) {
      error(node.name, "op '" + node.opType + "' has a subgraph (control flow is not supported)");
      ok = false;
    } else if (!converters.count(converterKey(node.domain, node.opType))) {
      error(node.name, "unsupported op '" + node.opType + "' (domain '" + domain + "', opset " +
                           std::to_string(model_.opsetFor(node.domain)) + ")");
      ok = false;
    }
  }
  return ok;
}

std::optional<RankedTensorType> GraphImporter::inputType(const ValueInfo &info) {
  if (!info.dtype || !info.dims) {
    error(info.name, "graph input has no declared tensor type and shape");
    return std::nullopt;
  }
  std::vector<int64_t> dims;
  auto pin = options_.inputShapes.find(info.name);
  if (pin != options_.inputShapes.end()) {
    const std::vector<int64_t> &pinned = pin->second;
    if (pinned.size() != info.dims->size()) {
      error(info.name, "--shape gives " + std::to_string(pinned.size()) + " dims but the input has rank " +
                           std::to_string(info.dims->size()));
      return std::nullopt;
    }
    for (size_t i = 0; i < pinned.size(); ++i) {
      const Dim &d = (*info.dims)[i];
      if (d.value >= 0 && d.value != pinned[i]) {
        error(info.name, "--shape " + info.name + "=" + shapeToString(pinned) +
                             " disagrees with the model's static dim " + std::to_string(i) +
                             " = " + std::to_string(d.value));
        return std::nullopt;
      }
      if (pinned[i] <= 0) {
        error(info.name, "--shape dims must be positive");
        return std::nullopt;
      }
    }
    dims = pinned;
  } else {
    for (size_t i = 0; i < info.dims->size(); ++i) {
      const Dim &d = (*info.dims)[i];
      if (d.value < 0) {
        error(info.name, "dim " + std::to_string(i) + " ('" +
                             (d.symbol.empty() ? std::string("?") : d.symbol) +
                             "') is dynamic: pin it with --shape " + info.name + "=DxD...");
        return std::nullopt;
      }
      dims.push_back(d.value);
    }
  }
  return RankedTensorType::get(dims, elementTypeFor(&context_, *info.dtype));
}

void GraphImporter::checkDeclaredType(const ValueInfo &info, Value value,
                                      const std::string &where) {
  auto type = cast<RankedTensorType>(value.getType());
  if (info.dtype && elementTypeFor(&context_, *info.dtype) != type.getElementType()) {
    error(where, "'" + info.name + "' is declared " + dtypeName(*info.dtype) +
                     " but computes another element type");
    return;
  }
  if (!info.dims)
    return;
  bool mismatch = info.dims->size() != size_t(type.getRank());
  for (size_t i = 0; !mismatch && i < info.dims->size(); ++i)
    mismatch = (*info.dims)[i].value >= 0 && (*info.dims)[i].value != type.getDimSize(i);
  if (mismatch) {
    std::string declared;
    for (const Dim &d : *info.dims)
      declared += (declared.empty() ? "" : "x") +
                  (d.value >= 0 ? std::to_string(d.value) : (d.symbol.empty() ? "?" : d.symbol));
    error(where, "shape mismatch: '" + info.name + "' is declared [" + declared +
                     "] but the graph computes [" +
                     shapeToString(Shape(type.getShape().begin(), type.getShape().end())) + "]");
  }
}

bool GraphImporter::convertNode(const Node &node) {
  // Report every undefined input (each is its own root problem), but stay
  // silent about inputs whose producer already failed.
  std::vector<Value> inputs;
  bool usable = true;
  for (const std::string &name : node.inputs) {
    if (name.empty()) {
      inputs.push_back(Value());
      continue;
    }
    auto it = values_.find(name);
    if (it != values_.end()) {
      inputs.push_back(it->second);
      continue;
    }
    if (!poisoned_.count(name))
      error(node.name, "input '" + name + "' is not a graph input, an initializer or the "
                       "output of an earlier node (missing initializer?)");
    usable = false;
  }
  if (!usable) {
    for (const std::string &out : node.outputs)
      poisoned_.insert(out);
    return false;
  }
  NodeContext ctx(builder_, node, nodeLoc(node.name), model_.opsetFor(node.domain),
                  std::move(inputs));
  const NodeConverter &convert = nodeConverters().at(converterKey(node.domain, node.opType));
  if (failed(convert(ctx))) {
    for (const std::string &out : node.outputs)
      poisoned_.insert(out);
    return false;
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    if (node.outputs[i].empty())
      continue;
    if (i >= ctx.outputs.size() || !ctx.outputs[i]) {
      error(node.name, "output " + std::to_string(i) + " ('" + node.outputs[i] +
                           "') of " + node.opType + " is not supported");
      poisoned_.insert(node.outputs[i]);
      continue;
    }
    values_[node.outputs[i]] = ctx.outputs[i];
  }
  return true;
}

OwningOpRef<ModuleOp> GraphImporter::run() {
  // Diagnostics from verifiers and type inference become `file:node: reason`.
  ScopedDiagnosticHandler handler(&context_, [&](Diagnostic &diag) {
    if (diag.getSeverity() != DiagnosticSeverity::Error)
      return success();
    errors_.push_back(model_.path + ":" + describeNode(diag.getLocation()) + ": " + diag.str());
    return success();
  });

  if (!checkOpsets() | !checkSupport())
    return nullptr;

  for (const auto &[name, _] : options_.inputShapes) {
    bool known = false;
    for (const ValueInfo &in : model_.inputs)
      known |= in.name == name;
    if (!known) {
      std::string names;
      for (const ValueInfo &in : model_.inputs)
        names += (names.empty() ? "" : ", ") + in.name;
      error("--shape", "the model has no input '" + name + "' (inputs: " + names + ")");
    }
  }

  OwningOpRef<ModuleOp> module = ModuleOp::create(FileLineColLoc::get(&context_, model_.path, 0, 0));
  SmallVector<Type> argTypes;
  for (const ValueInfo &in : model_.inputs) {
    std::optional<RankedTensorType> type = inputType(in);
    argTypes.push_back(type ? Type(*type) : Type());
  }
  if (!errors_.empty())
    return nullptr;

  builder_.setInsertionPointToEnd(module->getBody());
  auto func = builder_.create<func::FuncOp>(module->getLoc(), "main",
                                            builder_.getFunctionType(argTypes, {}));
  Block *body = func.addEntryBlock();
  builder_.setInsertionPointToEnd(body);
  for (size_t i = 0; i < model_.inputs.size(); ++i) {
    values_[model_.inputs[i].name] = body->getArgument(i);
    func.setArgAttr(i, "lc.name", builder_.getStringAttr(model_.inputs[i].name));
  }

  // Float initializers are parameters (trainable, data kept aside); integer
  // and bool ones feed shape computations, so they become constants.
  for (const TensorData &init : model_.initializers) {
    Location loc = nodeLoc(init.name);
    auto type = RankedTensorType::get(init.shape, elementTypeFor(&context_, init.dtype));
    if (isFloat(init.dtype) || !init.payload) {
      values_[init.name] = builder_.create<lc::ParamOp>(loc, type, init.name);
      weights_.payloads[init.name] = init.payload;
    } else {
      values_[init.name] = builder_.create<lc::ConstantOp>(loc, type, toElementsAttr(&context_, init));
    }
  }

  std::map<std::string, const ValueInfo *> declared;
  for (const ValueInfo &vi : model_.valueInfos)
    declared[vi.name] = &vi;
  for (const Node &node : model_.nodes) {
    if (!convertNode(node))
      continue;
    for (const std::string &out : node.outputs)
      if (auto it = declared.find(out); it != declared.end() && values_.count(out))
        checkDeclaredType(*it->second, values_[out], node.name);
  }

  SmallVector<Value> results;
  for (const ValueInfo &out : model_.outputs) {
    auto it = values_.find(out.name);
    if (it == values_.end()) {
      if (!poisoned_.count(out.name))
        error(out.name, "graph output is not produced by any node");
      continue;
    }
    checkDeclaredType(out, it->second, out.name);
    results.push_back(it->second);
  }
  if (!errors_.empty())
    return nullptr;
  builder_.create<func::ReturnOp>(module->getLoc(), results);
  SmallVector<Type> resultTypes;
  for (Value v : results)
    resultTypes.push_back(v.getType());
  func.setType(builder_.getFunctionType(argTypes, resultTypes));
  for (size_t i = 0; i < model_.outputs.size(); ++i)
    func.setResultAttr(i, "lc.name", builder_.getStringAttr(model_.outputs[i].name));
  if (failed(mlir::verify(*module)))
    return nullptr;
  return module;
}

} // namespace
} // namespace onnx_import

OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &context, const onnx_import::Model &model,
                                      const ImportOptions &options, WeightStore &weights,
                                      std::vector<std::string> &errors) {
  context.loadDialect<lc::LcDialect, func::FuncDialect>();
  return onnx_import::GraphImporter(context, model, options, weights, errors).run();
}

std::optional<std::vector<int64_t>> parseShapeSpec(const std::string &spec) {
  std::vector<int64_t> dims;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t next = spec.find_first_of("x,", pos);
    std::string item = spec.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos ||
        item.size() > 15)
      return std::nullopt;
    dims.push_back(std::stoll(item));
    if (next == std::string::npos)
      break;
    pos = next + 1;
  }
  return dims;
}

} // namespace longctx
