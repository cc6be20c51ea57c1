//===- ArtifactBuilder.cpp - `lc` function -> .lcx artifact ----------------===//
#include "compiler/artifact/ArtifactBuilder.h"
#include "dialects/lc/ParallelLanes.h"
#include "compiler/cuda/CudaKernels.h"
#include "compiler/import/NodeLocation.h"
#include "compiler/planning/ArenaPlanner.h"
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"
#include "runtime/Liveness.h"
#include "runtime/MemoryReport.h"
#include "runtime/OnnxInitializers.h"
#include "runtime/cpu/Kernels.h"
#include "runtime/cuda/KernelWorkspace.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/OperationSupport.h"

#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <set>

using namespace mlir;

namespace longctx {
namespace {

/// Splat constants above this many elements are filled at run time rather
/// than stored (ConstantOfShape masks grow with S x S).
constexpr int64_t kMaxStoredSplatElements = 4096;

class ManifestBuilder {
public:
  ManifestBuilder(const WeightStore &weights, Manifest &manifest, std::vector<uint8_t> &data,
                  bool planOnly, bool forCuda)
      : weights_(weights), m_(manifest), data_(data), planOnly_(planOnly), forCuda_(forCuda) {}

  LogicalResult build(func::FuncOp func);

private:
  /// A tensor of `value`'s type; bound to `value` unless `bind` is false
  /// (copies of a value made for graph outputs).
  FailureOr<int64_t> addTensor(Value value, TensorKind kind, std::string name, Operation *where,
                               bool bind = true);
  uint64_t appendData(const void *bytes, uint64_t size);
  LogicalResult lowerConstant(lc::ConstantOp op);
  LogicalResult lowerParam(lc::ParamOp op);
  LogicalResult lowerKernelOp(Operation *op);
  LogicalResult lowerUpdate(Operation *op, StringRef param, ValueRange operands, int numStates);
  int64_t addState(const TensorDesc &like, const std::string &suffix);
  void planArena();

  const WeightStore &weights_;
  Manifest &m_;
  std::vector<uint8_t> &data_;
  bool planOnly_;
  bool forCuda_;
  llvm::DenseMap<Value, int64_t> ids_;
};

FailureOr<int64_t> ManifestBuilder::addTensor(Value value, TensorKind kind, std::string name,
                                              Operation *where, bool bind) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  std::optional<DType> dtype = type ? lc::runtimeDType(type.getElementType()) : std::nullopt;
  if (!type || !type.hasStaticShape() || !dtype)
    return where->emitOpError("produces ") << value.getType()
                                           << ", which the runtime cannot hold";
  TensorDesc desc;
  desc.name = std::move(name);
  desc.dtype = *dtype;
  desc.shape.assign(type.getShape().begin(), type.getShape().end());
  desc.kind = kind;
  int64_t id = int64_t(m_.tensors.size());
  m_.tensors.push_back(std::move(desc));
  if (bind)
    ids_[value] = id;
  return id;
}

uint64_t ManifestBuilder::appendData(const void *bytes, uint64_t size) {
  uint64_t offset = (data_.size() + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  // Every entry is padded, so the section's size is dataSectionBytes().
  data_.resize((offset + size + kDataAlignment - 1) / kDataAlignment * kDataAlignment);
  if (size)
    std::memcpy(data_.data() + offset, bytes, size);
  return offset;
}

LogicalResult ManifestBuilder::lowerParam(lc::ParamOp op) {
  if (planOnly_) // shapes are all a plan needs
    return success(succeeded(addTensor(op.getResult(), TensorKind::Weight, op.getName().str(), op)));
  auto it = weights_.payloads.find(op.getName().str());
  if (it == weights_.payloads.end() || !it->second)
    return op.emitOpError("parameter '")
           << op.getName() << "' has no data (a --no-weights model can be planned, not run)";
  FailureOr<int64_t> id = addTensor(op.getResult(), TensorKind::Weight, op.getName().str(), op);
  if (failed(id))
    return failure();
  if (it->second->bytes() != m_.tensors[*id].bytes())
    return op.emitOpError("parameter '") << op.getName() << "' data does not match its type";
  m_.tensors[*id].offset = appendData(it->second->data(), it->second->bytes());
  return success();
}

LogicalResult ManifestBuilder::lowerConstant(lc::ConstantOp op) {
  auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
  if (!dense)
    return op.emitOpError("only dense constants can be stored");
  std::string name = nodeName(op.getLoc());
  if (dense.isSplat() && dense.getNumElements() > kMaxStoredSplatElements) {
    FailureOr<int64_t> id = addTensor(op.getResult(), TensorKind::Transient, name, op);
    if (failed(id))
      return failure();
    StepDesc step;
    step.op = "fill";
    step.outputs = {*id};
    Type element = dense.getElementType();
    double value = isa<FloatType>(element)
                       ? dense.getSplatValue<APFloat>().convertToDouble()
                       : double(element.isInteger(1) ? int64_t(dense.getSplatValue<bool>())
                                                     : dense.getSplatValue<APInt>().getSExtValue());
    step.attrs.set("value", value);
    step.location = name;
    m_.schedule.push_back(std::move(step));
    return success();
  }
  FailureOr<int64_t> id = addTensor(op.getResult(), TensorKind::Constant, name, op);
  if (failed(id))
    return failure();
  TensorDesc &desc = m_.tensors[*id];
  std::vector<uint8_t> bytes(desc.bytes());
  if (dense.getElementType().isInteger(1)) {
    size_t i = 0;
    for (bool v : dense.getValues<bool>())
      bytes[i++] = v;
  } else if (dense.isSplat()) {
    ArrayRef<char> raw = dense.getRawData();
    size_t width = dtypeSize(desc.dtype);
    for (size_t i = 0; i < bytes.size(); i += width)
      std::memcpy(bytes.data() + i, raw.data(), width);
  } else {
    ArrayRef<char> raw = dense.getRawData();
    if (raw.size() != bytes.size())
      return op.emitOpError("constant data has an unexpected layout");
    std::memcpy(bytes.data(), raw.data(), raw.size());
  }
  m_.tensors[*id].offset = appendData(bytes.data(), bytes.size());
  return success();
}

LogicalResult ManifestBuilder::lowerKernelOp(Operation *op) {
  std::string kernel = lc::kernelName(op);
  if (!lookupCpuKernel(kernel))
    return op->emitOpError("has no runtime kernel '") << kernel << "'";
  StepDesc step;
  step.op = kernel;
  step.attrs = lc::kernelAttributes(op);
  step.location = nodeName(op->getLoc());
  if (std::optional<lc::Lane> lane = lc::laneOf(op)) {
    step.group = lane->group;
    step.worker = lane->worker;
  }
  for (Value operand : op->getOperands()) {
    auto it = ids_.find(operand);
    if (it == ids_.end())
      return op->emitOpError("uses a value defined outside the function body");
    step.inputs.push_back(it->second);
  }
  for (Value result : op->getResults()) {
    FailureOr<int64_t> id = addTensor(result, TensorKind::Transient, step.location, op);
    if (failed(id))
      return failure();
    step.outputs.push_back(*id);
  }
  m_.schedule.push_back(std::move(step));
  return success();
}

int64_t ManifestBuilder::addState(const TensorDesc &like, const std::string &suffix) {
  TensorDesc state = like;
  state.name = like.name + suffix;
  state.kind = TensorKind::State;
  state.offset = (m_.stateBytes + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  m_.stateBytes = state.offset + state.bytes();
  m_.tensors.push_back(std::move(state));
  return int64_t(m_.tensors.size()) - 1;
}

/// An optimizer update reads and writes the parameter and its state in
/// place: inputs (param, states..., operands...), outputs (param, states...).
LogicalResult ManifestBuilder::lowerUpdate(Operation *op, StringRef param, ValueRange operands,
                                           int numStates) {
  int64_t weight = -1;
  for (size_t i = 0; i < m_.tensors.size(); ++i)
    if (m_.tensors[i].kind == TensorKind::Weight && m_.tensors[i].name == param)
      weight = int64_t(i);
  if (weight < 0)
    return op->emitOpError("updates '") << param << "', which is not a parameter read by the step";
  static const char *suffixes[] = {".exp_avg", ".exp_avg_sq"};
  StepDesc step;
  step.op = lc::kernelName(op);
  step.attrs = lc::kernelAttributes(op);
  step.location = nodeName(op->getLoc());
  step.inputs.push_back(weight);
  step.outputs.push_back(weight);
  for (int s = 0; s < numStates; ++s) {
    int64_t state = addState(m_.tensors[weight], numStates == 1 ? ".momentum_buffer" : suffixes[s]);
    step.inputs.push_back(state);
    step.outputs.push_back(state);
  }
  for (Value v : operands) {
    auto it = ids_.find(v);
    if (it == ids_.end())
      return op->emitOpError("uses a value defined outside the function body");
    step.inputs.push_back(it->second);
  }
  m_.schedule.push_back(std::move(step));
  return success();
}

void ManifestBuilder::planArena() {
  // Inputs live for the whole run (a run may be repeated without setting
  // them again) and outputs to the end, so the caller can read them.
  ScheduleLiveness live = computeLiveness(m_);
  std::vector<BufferLifetime> arenaBuffers;
  std::vector<size_t> arenaIds;
  std::vector<int64_t> bufferOf(m_.tensors.size(), -1);
  for (size_t i = 0; i < m_.tensors.size(); ++i) {
    if (!isArenaTensor(m_.tensors[i]))
      continue;
    int64_t reuses = live.reuses[i] >= 0 ? bufferOf[size_t(live.reuses[i])] : -1;
    bufferOf[i] = int64_t(arenaBuffers.size());
    arenaBuffers.push_back({m_.tensors[i].bytes(), live.first[i], live.last[i], reuses,
                            live.lane[i].group, live.lane[i].worker});
    arenaIds.push_back(i);
  }
  ArenaPlan plan = longctx::planArena(arenaBuffers, kArenaAlignment);
  for (size_t j = 0; j < arenaIds.size(); ++j)
    m_.tensors[arenaIds[j]].offset = plan.offsets[j];
  m_.arenaBytes = plan.arenaBytes;
}

LogicalResult ManifestBuilder::build(func::FuncOp func) {
  Block &body = func.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "lc.name");
    FailureOr<int64_t> id =
        addTensor(arg, TensorKind::Input,
                  name ? name.str() : "arg" + std::to_string(arg.getArgNumber()), func);
    if (failed(id))
      return failure();
    m_.inputs.push_back(*id);
  }
  for (Operation &op : body) {
    LogicalResult result =
        llvm::TypeSwitch<Operation *, LogicalResult>(&op)
            .Case<lc::ParamOp>([&](auto p) { return lowerParam(p); })
            .Case<lc::ConstantOp>([&](auto c) { return lowerConstant(c); })
            .Case<lc::AdamWUpdateOp>([&](lc::AdamWUpdateOp u) {
              return lowerUpdate(u, u.getParam(),
                                 {u.getGrad(), u.getLr(), u.getStep(), u.getScale()}, 2);
            })
            .Case<lc::SgdUpdateOp>([&](lc::SgdUpdateOp u) {
              return lowerUpdate(u, u.getParam(), {u.getGrad(), u.getLr(), u.getScale()}, 1);
            })
            .Case<func::ReturnOp>([&](func::ReturnOp ret) -> LogicalResult {
              for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
                auto name = func.getResultAttrOfType<StringAttr>(i, "lc.name");
                std::string outName = name ? name.str() : "output" + std::to_string(i);
                int64_t source = ids_.lookup(value);
                TensorDesc &desc = m_.tensors[source];
                bool ownBuffer = desc.kind == TensorKind::Transient &&
                                 !llvm::is_contained(m_.outputs, source);
                if (ownBuffer) {
                  desc.kind = TensorKind::Output;
                  desc.name = outName;
                  m_.outputs.push_back(source);
                  continue;
                }
                // An output that is an input, weight, constant or another
                // output gets its own copy.
                FailureOr<int64_t> copy =
                    addTensor(value, TensorKind::Output, outName, ret, /*bind=*/false);
                if (failed(copy))
                  return failure();
                m_.schedule.push_back({"identity", {source}, {*copy}, {}, outName});
                m_.outputs.push_back(*copy);
              }
              return success();
            })
            .Default([&](Operation *other) -> LogicalResult {
              if (!isa_and_nonnull<lc::LcDialect>(other->getDialect()))
                return other->emitOpError("cannot be lowered to the runtime");
              return lowerKernelOp(other);
            });
    if (failed(result))
      return failure();
  }
  // The CUDA kernels' scratch is planned with everything else, so the
  // arena is the device's whole working memory.
  if (forCuda_)
    cuda::addCudaWorkspaces(m_);
  planArena();
  return success();
}

} // namespace

LogicalResult buildManifest(ModuleOp module, const WeightStore &weights,
                            const ArtifactOptions &options, Manifest &manifest,
                            std::vector<uint8_t> &data) {
  auto func = module.lookupSymbol<func::FuncOp>("main");
  if (!func)
    return module.emitError("the module has no func.func @main to compile");
  manifest.producer = std::string("longctx-compile ") + LONGCTX_VERSION;
  manifest.mode = options.mode;
  manifest.source = options.source;
  manifest.training = options.training;
  // A module compiled for CUDA (lc.device) plans its kernels' scratch.
  return ManifestBuilder(weights, manifest, data, options.planOnly, lc::compiledForCuda(func))
      .build(func);
}

LogicalResult writeArtifactFile(ModuleOp module, const WeightStore &weights,
                                const ArtifactOptions &options, const std::string &path,
                                Manifest *manifestOut) {
  Manifest manifest;
  std::vector<uint8_t> data;
  if (failed(buildManifest(module, weights, options, manifest, data)))
    return failure();
  if (!options.cudaArchs.empty())
    if (Status s = addCudaKernels(manifest, options.cudaArchs); !s)
      return module.emitError(s.message());
  std::string ir;
  llvm::raw_string_ostream os(ir);
  module.print(os, OpPrintingFlags().elideLargeElementsAttrs(16));
  // Keep the source model minus what the artifact already holds (the
  // parameters), so trained weights can be exported into it later.
  std::string skeleton;
  if (!options.sourceModel.empty()) {
    std::set<std::string> params;
    for (const TensorDesc &t : manifest.tensors)
      if (t.kind == TensorKind::Weight)
        params.insert(t.name);
    Result<std::string> stripped = rewriteOnnxInitializers(
        options.sourceModel, [&](const std::string &name) -> std::optional<std::string_view> {
          if (params.count(name))
            return std::string_view();
          return std::nullopt;
        });
    if (!stripped)
      return module.emitError(stripped.status().message());
    skeleton = std::move(*stripped);
  }
  Status s = writeArtifact(path, manifest, data.data(), data.size(), ir, skeleton);
  if (!s)
    return module.emitError(s.message());
  if (manifestOut)
    *manifestOut = std::move(manifest);
  return success();
}

} // namespace longctx
