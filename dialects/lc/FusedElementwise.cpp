//===- FusedElementwise.cpp - lc.fused_elementwise ------------------------===//
#include "dialects/lc/KernelAttributes.h"
#include "dialects/lc/LcOps.h"

#include "llvm/ADT/DenseMap.h"

using namespace mlir;

namespace longctx::lc {

bool FusedElementwiseOp::canFuse(Operation *op) {
  if (!isa<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, PowOp, NegOp, AbsOp, ReluOp, ExpOp, LogOp,
           SqrtOp, ReciprocalOp, TanhOp, ErfOp, SigmoidOp, SoftplusOp, CosOp, SinOp>(op))
    return false;
  auto isFloat = [](Type t) {
    auto tensor = dyn_cast<RankedTensorType>(t);
    return tensor && isa<FloatType>(tensor.getElementType());
  };
  return llvm::all_of(op->getOperandTypes(), isFloat) && isFloat(op->getResult(0).getType());
}

LogicalResult FusedElementwiseOp::verify() {
  auto result = cast<RankedTensorType>(getOutput().getType());
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError("needs one block argument per input, got ")
           << body.getNumArguments() << " for " << getInputs().size();
  for (auto [input, arg] : llvm::zip(getInputs(), body.getArguments())) {
    auto type = cast<RankedTensorType>(input.getType());
    if (arg.getType() != type)
      return emitOpError("block argument type ") << arg.getType() << " differs from its input's "
                                                 << type;
    if (type.getElementType() != result.getElementType() ||
        (type.getRank() != 0 && type.getShape() != result.getShape()))
      return emitOpError("input ") << type << " is neither the result's shape " << result
                                   << " nor a scalar of its element type";
  }
  if (body.getOperations().size() < 2)
    return emitOpError("needs at least one op in its body");
  for (Operation &op : body.without_terminator())
    if (!canFuse(&op))
      return op.emitOpError("cannot be fused (not an elementwise float op)");
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().size() != 1 || yield.getValues()[0].getType() != result)
    return emitOpError("must yield one value of the result type ") << result;
  if (yield.getValues()[0].getDefiningOp() != &*std::prev(body.end(), 2))
    return emitOpError("must yield the last op's result");
  return success();
}

std::string FusedElementwiseOp::getProgram() {
  Block &body = getBody().front();
  llvm::DenseMap<Value, unsigned> number;
  for (BlockArgument arg : body.getArguments())
    number[arg] = arg.getArgNumber();
  std::string program;
  unsigned next = body.getNumArguments();
  for (Operation &op : body.without_terminator()) {
    program += kernelName(&op);
    for (Value operand : op.getOperands())
      program += " " + std::to_string(number.lookup(operand));
    program += ";";
    number[op.getResult(0)] = next++;
  }
  return program;
}

} // namespace longctx::lc
