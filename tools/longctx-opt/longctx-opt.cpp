//===- longctx-opt.cpp - Runs any longctx or MLIR pass on .mlir files ------===//
#include "dialects/lc/LcDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  longctx::registerLongctxPasses();
  mlir::DialectRegistry registry;
  registry.insert<longctx::lc::LcDialect, mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "longctx-opt: runs longctx and MLIR passes on .mlir files\n", registry));
}
