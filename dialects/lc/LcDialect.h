//===- LcDialect.h - The longctx `lc` dialect -------------------*- C++ -*-===//
#pragma once

#include "mlir/IR/Dialect.h"

#include "dialects/lc/LcDialect.h.inc"
