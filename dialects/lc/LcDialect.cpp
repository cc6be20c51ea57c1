//===- LcDialect.cpp - The longctx `lc` dialect ----------------------------===//
#include "dialects/lc/LcDialect.h"
#include "dialects/lc/LcOps.h"

using namespace mlir;
using namespace longctx::lc;

#include "dialects/lc/LcDialect.cpp.inc"
#include "dialects/lc/LcInterfaces.cpp.inc"

void LcDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/lc/LcOps.cpp.inc"
      >();
}

Operation *LcDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                          Type type, Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return builder.create<ConstantOp>(loc, type, elements);
}
