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

int64_t MiniSequenceOp::getChunkRows(unsigned i) {
  int64_t rows = cast<RankedTensorType>(getInputs()[i].getType()).getDimSize(0);
  if (!getSplit()[i])
    return rows;
  int64_t chunks = std::max<int64_t>(getChunks(), 1);
  return std::max<int64_t>((rows + chunks - 1) / chunks, 1);
}

int64_t MiniSequenceOp::getNumChunks() {
  for (auto [i, split] : llvm::enumerate(getSplit()))
    if (split) {
      int64_t rows = cast<RankedTensorType>(getInputs()[i].getType()).getDimSize(0);
      int64_t chunk = getChunkRows(unsigned(i));
      return (rows + chunk - 1) / chunk;
    }
  return 0;
}

LogicalResult MiniSequenceOp::verify() {
  if (getChunks() < 1)
    return emitOpError("needs at least one chunk, got ") << getChunks();
  if (getSplit().size() != getInputs().size())
    return emitOpError("split has ") << getSplit().size() << " entries for "
                                     << getInputs().size() << " inputs";
  const int64_t carried = getCarried();
  if (carried < 0 || carried > int64_t(getInputs().size()) ||
      2 * carried > int64_t(getOutputs().size()))
    return emitOpError("carries ") << carried << " values, but has " << getInputs().size()
                                   << " inputs and " << getOutputs().size() << " results";
  const unsigned numInputs = getNumChunkInputs(), numResults = getNumChunkResults();
  if (getSum().size() != numResults)
    return emitOpError("sum has ") << getSum().size() << " entries for " << numResults
                                   << " chunk results";
  int64_t count = -1;
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    if (!getSplit()[i])
      continue;
    if (i >= numInputs)
      return emitOpError("carried input ") << i << " cannot be split";
    auto t = cast<RankedTensorType>(input.getType());
    if (t.getRank() < 1 || !t.hasStaticShape() || t.getDimSize(0) < 1)
      return emitOpError("split inputs need a static shape with rows, got ") << t;
    int64_t chunk = getChunkRows(unsigned(i));
    int64_t n = (t.getDimSize(0) + chunk - 1) / chunk;
    if (count >= 0 && n != count)
      return emitOpError("split inputs disagree on their number of chunks: ")
             << count << " and " << n;
    count = n;
  }
  if (count < 1)
    return emitOpError("needs a split input with at least one row");
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError("body has ") << body.getNumArguments() << " arguments for "
                                    << getInputs().size() << " inputs";
  for (auto [i, input] : llvm::enumerate(getInputs())) {
    Type want = getSplit()[i] ? withRows(input.getType(), getChunkRows(unsigned(i)))
                              : input.getType();
    if (body.getArgument(i).getType() != want)
      return emitOpError("body argument ") << i << " is " << body.getArgument(i).getType()
                                           << ", expected " << want;
  }
  auto yield = dyn_cast<YieldOp>(body.getTerminator());
  if (!yield || yield.getValues().size() != numResults + carried)
    return emitOpError("body must yield one value per chunk result and per carried value");
  for (unsigned i = 0; i < numResults; ++i) {
    auto result = cast<RankedTensorType>(getOutputs()[i].getType());
    auto yielded = cast<RankedTensorType>(yield.getValues()[i].getType());
    if (getSum()[i]) {
      if (yielded != result)
        return emitOpError("yields ") << yielded << " for result " << i << ", expected "
                                      << result;
      continue;
    }
    // A concatenated result has the rows of a split input with as many rows
    // per chunk as it yields.
    bool matched = false;
    for (auto [j, input] : llvm::enumerate(getInputs()))
      if (getSplit()[j] && getChunkRows(unsigned(j)) == yielded.getDimSize(0) &&
          cast<RankedTensorType>(input.getType()).getDimSize(0) == result.getDimSize(0))
        matched = true;
    if (!matched || yielded != withRows(result, yielded.getDimSize(0)))
      return emitOpError("yields ") << yielded << " for concatenated result " << i
                                    << " of type " << result
                                    << ", which no split input's chunks add up to";
  }
  for (int64_t j = 0; j < carried; ++j) {
    Type state = getInputs()[numInputs + j].getType();
    Type next = yield.getValues()[numResults + j].getType();
    Type final = getOutputs()[numResults + j].getType();
    Type history = getOutputs()[numResults + carried + j].getType();
    int64_t rows = cast<RankedTensorType>(state).getDimSize(0);
    if (next != state || final != state || history != withRows(state, count * rows))
      return emitOpError("carried value ") << j << " of type " << state
                                           << " needs the same type yielded and returned, "
                                           << "and a history of " << count << " x its rows";
  }
  if (std::optional<ArrayRef<int64_t>> gradients = getGradients()) {
    if (carried)
      return emitOpError("gradients are not supported with carried values");
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
  return success();
}

/// The backward is a mini_sequence over the same chunks: inputs are the
/// forward's chunk inputs, for a carried loop the histories of its carried
/// values (each chunk's starting state), and the chunk results' cotangents
/// (split like their results: a summed result's cotangent reaches every
/// chunk whole); a carried loop runs in reverse, carrying the state's
/// cotangent from the final value's. The body recomputes the chunk's forward
/// and sweeps it in reverse with the ops' own rules; it yields each float
/// input's cotangent, concatenated for split inputs and summed over chunks
/// for whole ones (the weights), and the cotangent of the chunk's starting
/// state as the next carried value.
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
  const unsigned numInputs = getNumChunkInputs(), numResults = getNumChunkResults();
  const unsigned carried = unsigned(getCarried());
  for (unsigned j = 0; j < carried; ++j)
    if (dys[numResults + carried + j] && !isZeros(dys[numResults + carried + j]))
      return emitOpError("the history of a carried value cannot be differentiated");
  // What the reverse loop carries for each carried value: its cotangent, or
  // for a truncated scan's state, the adjoint window.
  auto yield = cast<YieldOp>(getBody().front().getTerminator());
  SmallVector<Type> carriedCotangents;
  for (unsigned j = 0; j < carried; ++j) {
    Type state = getInputs()[numInputs + j].getType();
    auto scan = yield.getValues()[numResults + j].getDefiningOp<SelectiveScanStateOp>();
    if (!scan || !scan.getTruncate()) {
      carriedCotangents.push_back(state);
      continue;
    }
    auto stateType = cast<RankedTensorType>(state);
    SmallVector<int64_t> window(stateType.getShape());
    window.insert(window.begin() + 1, *scan.getTruncate());
    carriedCotangents.push_back(RankedTensorType::get(window, stateType.getElementType()));
    Value d = dys[numResults + j];
    if ((d && !isZeros(d)) || !getInputs()[numInputs + j].getDefiningOp<ConstantOp>())
      return emitOpError("a truncated scan's state must start from a constant and not be read "
                         "after the loop (its reverse loop carries an adjoint window, not the "
                         "state's cotangent)");
  }

  SmallVector<Value> inputs(getInputs().take_front(numInputs));
  SmallVector<bool> split(getSplit().take_front(numInputs));
  for (unsigned j = 0; j < carried; ++j) { // each chunk's starting state
    inputs.push_back(getResult(numResults + carried + j));
    split.push_back(true);
  }
  SmallVector<unsigned> seeded;
  for (unsigned i = 0; i < numResults; ++i)
    if (dys[i]) {
      seeded.push_back(i);
      inputs.push_back(dys[i]);
      split.push_back(!getSum()[i]);
    }
  for (unsigned j = 0; j < carried; ++j) { // the final state's cotangent
    Value d = dys[numResults + j];
    inputs.push_back(d && d.getType() == carriedCotangents[j]
                         ? d
                         : b.zeros(cast<RankedTensorType>(carriedCotangents[j])));
    split.push_back(false);
  }
  SmallVector<unsigned> differentiated;
  SmallVector<Type> resultTypes;
  SmallVector<bool> summed;
  for (unsigned i = 0; i < numInputs; ++i)
    if (isFloatTensor(getInputs()[i].getType())) {
      differentiated.push_back(i);
      resultTypes.push_back(getInputs()[i].getType());
      summed.push_back(!getSplit()[i]);
    }
  int64_t count = getNumChunks();
  for (unsigned j = 0; j < carried; ++j) // the initial states' cotangents
    resultTypes.push_back(carriedCotangents[j]);
  for (unsigned j = 0; j < carried; ++j) { // their history (unused)
    Type carry = carriedCotangents[j];
    resultTypes.push_back(withRows(carry, count * cast<RankedTensorType>(carry).getDimSize(0)));
  }
  // As many chunks as ran: a history has exactly one chunk's state per chunk.
  auto backward = b.b.create<MiniSequenceOp>(
      b.loc, resultTypes, inputs, b.b.getI64IntegerAttr(count), b.b.getDenseBoolArrayAttr(split),
      b.b.getDenseBoolArrayAttr(summed), DenseI64ArrayAttr(), b.b.getI64IntegerAttr(carried),
      carried ? b.b.getUnitAttr() : UnitAttr());
  // Passes that tag a loop (lc.adjoint_layer) find its backward by the tag.
  for (NamedAttribute attr : (*this)->getDiscardableAttrs())
    backward->setAttr(attr.getName(), attr.getValue());
  Block *block = new Block();
  backward.getBody().push_back(block);
  for (auto [i, input] : llvm::enumerate(inputs))
    block->addArgument(split[i] ? Type(withRows(input.getType(), backward.getChunkRows(unsigned(i))))
                                : input.getType(),
                       b.loc);

  OpBuilder inner = OpBuilder::atBlockEnd(block);
  Block &forwardBody = getBody().front();
  IRMapping mapping;
  for (unsigned i = 0; i < numInputs + carried; ++i)
    mapping.map(forwardBody.getArgument(i), block->getArgument(i));
  SmallVector<Operation *> recomputed;
  for (Operation &op : forwardBody.without_terminator())
    recomputed.push_back(inner.clone(op, mapping));

  llvm::DenseMap<Value, Value> cotangents;
  auto accumulate = [&](Value v, Value g, Location loc) {
    auto [it, inserted] = cotangents.try_emplace(v, g);
    if (!inserted)
      it->second = inner.create<AddOp>(loc, it->second, g);
  };
  for (auto [k, i] : llvm::enumerate(seeded))
    accumulate(mapping.lookup(yield.getValues()[i]),
               block->getArgument(unsigned(numInputs + carried + k)), b.loc);
  for (unsigned j = 0; j < carried; ++j)
    accumulate(mapping.lookup(yield.getValues()[numResults + j]),
               block->getArgument(unsigned(inputs.size() - carried + j)), b.loc);
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
  auto cotangentOf = [&](Value arg) -> Value {
    Value g = cotangents.lookup(arg);
    return g ? g : zeros.zeros(cast<RankedTensorType>(arg.getType()));
  };
  for (unsigned i : differentiated)
    yielded.push_back(cotangentOf(block->getArgument(i)));
  for (unsigned j = 0; j < carried; ++j) {
    Value g = cotangents.lookup(block->getArgument(numInputs + j));
    yielded.push_back(g ? g : zeros.zeros(cast<RankedTensorType>(carriedCotangents[j])));
  }
  inner.create<YieldOp>(b.loc, yielded);

  grads.assign(getInputs().size(), Value());
  for (auto [k, i] : llvm::enumerate(differentiated))
    grads[i] = backward.getResult(unsigned(k));
  for (unsigned j = 0; j < carried; ++j) // a window is no cotangent of the (constant) state
    if (carriedCotangents[j] == getInputs()[numInputs + j].getType())
      grads[numInputs + j] = backward.getResult(unsigned(differentiated.size() + j));
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
  // A slice taking a whole dim keeps taking it whole at its new size.
  if (auto slice = dyn_cast<SliceOp>(clone)) {
    auto from = cast<RankedTensorType>(op.getOperand(0).getType());
    auto to = cast<RankedTensorType>(slice.getInput().getType());
    SmallVector<int64_t> sizes(slice.getSizes());
    for (int64_t d = 0; d < from.getRank() && d < int64_t(sizes.size()); ++d)
      if (from.getDimSize(d) != to.getDimSize(d) && slice.getStarts()[d] == 0 &&
          slice.getSteps()[d] == 1 && sizes[d] == from.getDimSize(d))
        sizes[d] = to.getDimSize(d);
    slice.setSizes(sizes);
  }
  SmallVector<Type> types;
  if (auto infer = dyn_cast<InferTypeOpInterface>(clone)) {
    if (failed(infer.inferReturnTypes(clone->getContext(), clone->getLoc(), clone->getOperands(),
                                      clone->getAttrDictionary(), clone->getPropertiesStorage(),
                                      clone->getRegions(), types)))
      types.clear();
  } else if (clone->hasTrait<OpTrait::SameOperandsAndResultType>()) {
    types.assign(clone->getNumResults(), clone->getOperand(0).getType());
  } else if (auto scatter = dyn_cast<SliceScatterOp>(clone)) {
    // The adjoint of a slice: dims the slice took whole follow the source.
    auto from = cast<RankedTensorType>(op.getOperand(0).getType());
    auto to = cast<RankedTensorType>(scatter.getInput().getType());
    auto result = cast<RankedTensorType>(op.getResult(0).getType());
    SmallVector<int64_t> shape(result.getShape());
    bool ok = true;
    for (int64_t d = 0; d < result.getRank(); ++d)
      if (from.getDimSize(d) != to.getDimSize(d)) {
        ok &= from.getDimSize(d) == result.getDimSize(d) && scatter.getStarts()[d] == 0 &&
              scatter.getSteps()[d] == 1;
        shape[d] = to.getDimSize(d);
      }
    if (ok)
      types.push_back(RankedTensorType::get(shape, result.getElementType()));
  } else if (isa<ReshapeOp>(clone)) {
    // A reshape that keeps the changed dim whole (e.g. [c, E] <-> [1, c, E]):
    // the result's dim of that size takes the new size.
    auto from = cast<RankedTensorType>(op.getOperand(0).getType());
    auto to = cast<RankedTensorType>(clone->getOperand(0).getType());
    auto result = cast<RankedTensorType>(op.getResult(0).getType());
    SmallVector<int64_t> changed;
    for (int64_t d = 0; d < from.getRank(); ++d)
      if (from.getDimSize(d) != to.getDimSize(d))
        changed.push_back(d);
    SmallVector<int64_t> shape(result.getShape());
    if (changed.size() == 1) {
      int64_t oldSize = from.getDimSize(changed[0]), newSize = to.getDimSize(changed[0]);
      ArrayRef<int64_t> in = from.getShape(), out = result.getShape();
      auto sameBut = [&](ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
        SmallVector<int64_t> x(a), y(b);
        llvm::erase(x, 1);
        llvm::erase(y, 1);
        return x == y; // the same dims, unit dims aside
      };
      if (llvm::count(shape, oldSize) == 1)
        *llvm::find(shape, oldSize) = newSize;
      else if (sameBut(in, out) && oldSize != 1) {
        // Unit dims moved around: map the k-th non-unit dim to the k-th.
        int64_t k = llvm::count_if(in.take_front(changed[0]), [](int64_t v) { return v != 1; });
        for (int64_t d = 0, seen = 0; d < int64_t(shape.size()); ++d)
          if (shape[d] != 1 && seen++ == k)
            shape[d] = newSize;
      }
    }
    auto type = RankedTensorType::get(shape, result.getElementType());
    if (type != result && type.getNumElements() == to.getNumElements())
      types.push_back(type);
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
