//===- LcDialect.td - The longctx `lc` dialect -------------*- tablegen -*-===//
#ifndef LC_DIALECT_TD
#define LC_DIALECT_TD

include "mlir/IR/OpBase.td"

def Lc_Dialect : Dialect {
  let name = "lc";
  let cppNamespace = "::longctx::lc";
  let summary = "ONNX-semantic tensor ops on static shapes, for training long sequences";
  let description = [{
    The `lc` dialect is what longctx imports ONNX models into and what its
    training and memory passes rewrite. Every op works on statically shaped
    ranked tensors and has the semantics of the ONNX operator it is named
    after, with shape-carrying inputs (Reshape's shape, Slice's starts, ...)
    already folded into attributes or the result type. Each op has exactly one
    CPU kernel of the same name in the runtime; the folder evaluates ops on
    constant operands with those kernels.
  }];
  let hasConstantMaterializer = 1;
  let useDefaultAttributePrinterParser = 0;
  let useDefaultTypePrinterParser = 0;
}

#endif // LC_DIALECT_TD
