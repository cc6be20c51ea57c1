//===- Passes.td - longctx passes --------------------------*- tablegen -*-===//
#ifndef LONGCTX_PASSES_TD
#define LONGCTX_PASSES_TD

include "mlir/Pass/PassBase.td"

def LcCheckKernels : Pass<"lc-check-kernels", "mlir::ModuleOp"> {
  let summary = "Check that every op can run: a runtime kernel, static shapes, known types";
  let description = [{
    The last gate before an artifact is written: reports, at once, every op
    the runtime has no kernel for and every value whose type it cannot hold
    (dynamic shapes, unsupported element types), so users see all problems in
    one compile instead of one per attempt.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

#endif // LONGCTX_PASSES_TD
