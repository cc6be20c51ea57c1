//===- LcInterfaces.td - Interfaces of the `lc` dialect ----*- tablegen -*-===//
#ifndef LC_INTERFACES_TD
#define LC_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Lc_GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::longctx::lc";
  let description = [{
    The reverse-mode rule of an op (Enzyme-MLIR's ReverseAutoDiffOpInterface,
    simplified to tensors): given the cotangent of each result, build the
    vector-Jacobian product for each operand. `lc-autodiff` calls it on every
    op between the parameters and the loss, in reverse order.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds the cotangents of the operands. `resultGrads` has one entry per
        result, null for a result that does not reach the loss. Fills
        `operandGrads` with one entry per operand: null for operands that get
        none (integer or bool operands, indices, masks).
      }],
      "::llvm::LogicalResult", "buildVjp",
      (ins "::longctx::lc::VjpBuilder &":$builder,
           "::llvm::ArrayRef<::mlir::Value>":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>,
  ];
}

#endif // LC_INTERFACES_TD
