//===- MiniSequence.cpp - lc.mini_sequence: verifier and gradient ----------===//
#include "dialects/lc/LcOps.h"
#include "dialects/lc/VjpBuilder.h"

#include "mlir/IR/IRMapping.h"

using namespace mlir;

namespace longctx::lc {
namespace {

/// `type` with dim 0 set to `rows`.
RankedTensorType withRows(Type type, int64_t rows) {
  auto t = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(t.getShape());
  shape[0] = rows;
  return RankedTensorType::get(shape, t.getElementType());
}

bool isFloatTensor(Type type) {
  auto t = dyn_cast<RankedTensorType>(type);
  return t && isa<FloatType>(t.getElementType());
}

} // namespace

int64_t MiniSequenceOp::getRows() {
  for (auto [input, split] : llvm::zip(getInputs(), getSplit()))
    if (split)
      return cast<RankedTensorType>(input.getType()).getDimSize(0);
  return 0;
}

int64_t MiniSequenceOp::getChunkRows() {
  int64_t chunks = std::max<int64_t>(getChunks(), 1);
  return (getRows() + chunks - 1) / chunks;
}

LogicalResult MiniSequenceOp::verify() {
  if (getChunks() < 1)
    return emitOpError("needs at least one chunk, got ") << getChunks();
  if (getSplit().size() != getInputs().size())
    return emitOpError("split has ") << getSplit().size() << " entries for "
                                     << getInputs().size() << " inputs";
  if (getSum().size() != getOutputs().size())
    return emitOpError("sum has ") << getSum().size() << " entries for "
                                   << getOutputs().size() << " results";
  int64_t rows = -1;
  for (auto [input, split] : llvm::zip(getInputs(), getSplit())) {
    if (!split)
      continue;
    auto t = cast<RankedTensorType>(input.getType());
    if (t.getRank() < 1 || !t.hasStaticShape())
      return emitOpError("split inputs need a static shape with a row dim, got ") << t;
    if (rows >= 0 && t.getDimSize(0) != rows)
      return emitOpError("split inputs disagree on their rows: ") << rows << " and "
                                                                 << t.getDimSize(0);
    rows = t.getDimSize(0);
  }
  if (rows < 1)
    return emitOpError("needs a split input with at least one row");
  int64_t chunk = getChunkRows();
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError("body has ") << body.getNumArguments() << " arguments for "
                                    << getInputs().size() << " inputs";
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    Type want = getSplit()[i] ? withRows(input.getType(), chunk) : input.getType();
    if (body.getArgument(i).getType() != want)
      return emitOpError("body argument ") << i << " is " << body.getArgument(i).getType()
                                           << ", expected " << want;
  }
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield || yield.getValues().size() != getOutputs().size())
    return emitOpError("body must yield one value per result");
  if (std::optional<ArrayRef<int64_t>> gradients = getGradients()) {
    if (gradients->size() != getInputs().size())
      return emitOpError("gradients has ") << gradients->size() << " entries for "
                                           << getInputs().size() << " inputs";
    if (getOutputs().empty() || cast<RankedTensorType>(getOutputs()[0].getType()).getRank() != 0 ||
        !getSum()[0])
      return emitOpError("with gradients, result 0 must be a summed scalar");
    for (auto [i, r] : llvm::enumerate(*gradients)) {
      if (r < 0)
        continue;
      if (r == 0 || r >= int64_t(getOutputs().size()) ||
          getOutputs()[r].getType() != getInputs()[i].getType() ||
          getSum()[r] == getSplit()[i])
        return emitOpError("gradient of input ")
               << i << " must be a result (other than 0) of its type, concatenated for a split "
               << "input and summed for a whole one";
    }
  }
  for (auto [i, value] : llvm::enumerate(yield.getValues())) {
    Type result = getOutputs()[i].getType();
    auto yielded = cast<RankedTensorType>(value.getType());
    Type want = getSum()[i] ? result : withRows(result, chunk);
    if (!getSum()[i] && cast<RankedTensorType>(result).getDimSize(0) != rows)
      return emitOpError("concatenated result ") << i << " must have " << rows << " rows";
    if (yielded != want)
      return emitOpError("yields ") << yielded << " for result " << i << ", expected " << want;
  }
  return success();
}

/// The backward is a mini_sequence over the same chunks: inputs are the
/// forward's inputs plus the results' cotangents (split like the results
/// they belong to: a summed result's cotangent reaches every chunk whole);
/// the body recomputes the chunk's forward and sweeps it in reverse with
/// the ops' own rules; it yields each float input's cotangent, concatenated
/// for split inputs and summed over chunks for whole ones (the weights).
LogicalResult MiniSequenceOp::buildVjp(VjpBuilder &b, ArrayRef<Value> dys,
                                       SmallVectorImpl<Value> &grads) {
  if (std::optional<ArrayRef<int64_t>> gradients = getGradients()) {
    // The body made them for upstream 1: scale by the upstream cotangent.
    grads.assign(getInputs().size(), Value());
    if (dys.empty() || !dys[0])
      return success();
    for (auto [i, r] : llvm::enumerate(*gradients))
      if (r > 0)
        grads[i] = b.mul(getResult(unsigned(r)), dys[0]);
    return success();
  }
  SmallVector<Value> inputs(getInputs());
  SmallVector<bool> split(getSplit());
  SmallVector<unsigned> seeded;
  for (auto [i, dy] : llvm::enumerate(dys))
    if (dy) {
      seeded.push_back(unsigned(i));
      inputs.push_back(dy);
      split.push_back(!getSum()[i]);
    }
  SmallVector<unsigned> differentiated;
  SmallVector<Type> resultTypes;
  SmallVector<bool> summed;
  for (auto [i, input] : llvm::enumerate(getInputs()))
    if (isFloatTensor(input.getType())) {
      differentiated.push_back(unsigned(i));
      resultTypes.push_back(input.getType());
      summed.push_back(!getSplit()[i]);
    }
  auto backward = b.b.create<MiniSequenceOp>(b.loc, resultTypes, inputs, getChunksAttr(),
                                             b.b.getDenseBoolArrayAttr(split),
                                             b.b.getDenseBoolArrayAttr(summed),
                                             DenseI64ArrayAttr());
  Block *block = new Block();
  backward.getBody().push_back(block);
  int64_t chunk = getChunkRows();
  for (auto [input, s] : llvm::zip(inputs, split))
    block->addArgument(s ? Type(withRows(input.getType(), chunk)) : input.getType(), b.loc);

  OpBuilder inner = OpBuilder::atBlockEnd(block);
  Block &forwardBody = getBody().front();
  IRMapping mapping;
  for (auto [from, to] : llvm::zip(forwardBody.getArguments(), block->getArguments()))
    mapping.map(from, to);
  SmallVector<Operation *> recomputed;
  for (Operation &op : forwardBody.without_terminator())
    recomputed.push_back(inner.clone(op, mapping));

  llvm::DenseMap<Value, Value> cotangents;
  auto accumulate = [&](Value v, Value g, Location loc) {
    auto [it, inserted] = cotangents.try_emplace(v, g);
    if (!inserted)
      it->second = inner.create<AddOp>(loc, it->second, g);
  };
  auto yield = cast<YieldOp>(forwardBody.getTerminator());
  for (auto [k, i] : llvm::enumerate(seeded))
    accumulate(mapping.lookup(yield.getValues()[i]),
               block->getArgument(unsigned(getInputs().size() + k)), b.loc);
  for (Operation *op : llvm::reverse(recomputed)) {
    SmallVector<Value> resultGrads;
    bool any = false;
    for (Value r : op->getResults()) {
      resultGrads.push_back(cotangents.lookup(r));
      any |= bool(resultGrads.back());
    }
    if (!any)
      continue;
    auto rule = dyn_cast<GradientOpInterface>(op);
    if (!rule)
      return op->emitOpError("has no gradient rule, but lies inside a mini-sequence");
    VjpBuilder vjp(inner, op->getLoc());
    for (auto [g, r] : llvm::zip(resultGrads, op->getResults()))
      if (!g)
        g = vjp.zeros(cast<RankedTensorType>(r.getType()));
    SmallVector<Value> operandGrads;
    if (failed(rule.buildVjp(vjp, resultGrads, operandGrads)))
      return failure();
    for (auto [operand, g] : llvm::zip(op->getOperands(), operandGrads))
      if (g && isFloatTensor(operand.getType()))
        accumulate(operand, g, op->getLoc());
  }
  SmallVector<Value> yielded;
  VjpBuilder zeros(inner, b.loc);
  for (unsigned i : differentiated) {
    Value arg = block->getArgument(i);
    Value g = cotangents.lookup(arg);
    yielded.push_back(g ? g : zeros.zeros(cast<RankedTensorType>(arg.getType())));
  }
  inner.create<YieldOp>(b.loc, yielded);

  grads.assign(getInputs().size(), Value());
  for (auto [k, i] : llvm::enumerate(differentiated))
    grads[i] = backward.getResult(unsigned(k));
  return success();
}

} // namespace longctx::lc

namespace longctx::lc {

Operation *cloneWithInferredTypes(OpBuilder &builder, Operation &op, IRMapping &mapping) {
  Operation *clone = builder.clone(op, mapping);
  bool changed = llvm::any_of(llvm::zip(op.getOperands(), clone->getOperands()), [](auto pair) {
    return std::get<0>(pair).getType() != std::get<1>(pair).getType();
  });
  if (!changed)
    return clone;
  SmallVector<Type> types;
  if (auto infer = dyn_cast<InferTypeOpInterface>(clone)) {
    if (failed(infer.inferReturnTypes(clone->getContext(), clone->getLoc(), clone->getOperands(),
                                      clone->getAttrDictionary(), clone->getPropertiesStorage(),
                                      clone->getRegions(), types)))
      types.clear();
  } else if (clone->hasTrait<OpTrait::SameOperandsAndResultType>()) {
    types.assign(clone->getNumResults(), clone->getOperand(0).getType());
  }
  if (types.size() != clone->getNumResults()) {
    clone->erase();
    return nullptr;
  }
  for (auto [result, type] : llvm::zip(clone->getResults(), types)) {
    result.setType(type);
    mapping.map(op.getResult(result.getResultNumber()), result);
  }
  return clone;
}

} // namespace longctx::lc
