//===- FusedElementwise.cpp - fused_elementwise: a chain in one pass ------===//
//
// The body of lc.fused_elementwise arrives as a `program` ("sigmoid 0;mul 0
// 2;" : op names and operand numbers, the inputs first, then each
// instruction's result). The elements are cut into tiles small enough that
// every intermediate of a tile stays in L1/L2; each instruction runs the op's
// own CPU kernel on the tile, so the result is the unfused ops' bit for bit
// while the intermediates never touch memory at full size.
//
//===----------------------------------------------------------------------===//
#include "runtime/cpu/KernelFamilies.h"
#include "runtime/cpu/KernelUtil.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

namespace longctx {
namespace cpu {
namespace {

/// Elements per tile: 16 KiB of floats per intermediate.
constexpr int64_t kTileElements = 4096;

struct Instruction {
  std::string op;
  KernelFn kernel = nullptr; // looked up once, not per tile
  std::vector<size_t> operands;
};

/// Parses and checks `program` against `numInputs` inputs.
Status parseProgram(const char *op, const std::string &program, size_t numInputs,
                    std::vector<Instruction> &out) {
  std::stringstream all(program);
  std::string text;
  while (std::getline(all, text, ';')) {
    std::stringstream words(text);
    Instruction ins;
    if (!(words >> ins.op))
      continue;
    ins.kernel = lookupCpuKernel(ins.op);
    if (!ins.kernel || !cpuKernelAllowsInPlace(ins.op))
      return opError(op, "program step '" + ins.op + "' is not an elementwise kernel");
    for (std::string word; words >> word;) {
      char *end = nullptr;
      const unsigned long long index = std::strtoull(word.c_str(), &end, 10);
      if (word.empty() || *end != '\0' || !std::isdigit(static_cast<unsigned char>(word[0])))
        return opError(op, "program operand '" + word + "' is not a number");
      if (index >= numInputs + out.size())
        return opError(op, "program step '" + ins.op + "' reads value " + word +
                               ", which is not computed before it");
      ins.operands.push_back(size_t(index));
    }
    if (ins.operands.empty() || ins.operands.size() > 2)
      return opError(op, "program step '" + ins.op + "' needs one or two operands");
    out.push_back(std::move(ins));
  }
  if (out.empty())
    return opError(op, "empty program");
  return Status();
}

Status fusedElementwiseKernel(const std::vector<TensorRef> &inputs,
                              const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  const char *op = "fused_elementwise";
  if (Status s = checkArity(op, inputs, 1, size_t(-1), outputs, 1); !s)
    return s;
  const TensorRef &out = outputs[0];
  if (out.dtype != DType::F32 && out.dtype != DType::F64)
    return opError(op, "output must be f32 or f64, got " + std::string(dtypeName(out.dtype)));
  for (const TensorRef &in : inputs) {
    if (Status s = checkDType(op, "input", in.dtype, out.dtype); !s)
      return s;
    if (in.rank() != 0)
      if (Status s = checkShape(op, "input", in.shape, out.shape); !s)
        return s;
  }
  std::vector<Instruction> program;
  if (Status s = parseProgram(op, attrs.getString("program"), inputs.size(), program); !s)
    return s;

  const int64_t n = out.numElements();
  const int64_t tiles = (n + kTileElements - 1) / kTileElements;
  const size_t element = dtypeSize(out.dtype);
  Status failure;
  const AttrMap noAttrs;
#pragma omp parallel if (n >= kParallelGrain && tiles > 1)
  {
    // One tile buffer per instruction but the last, which writes the output.
    std::vector<std::vector<uint8_t>> scratch(program.size() - 1,
                                              std::vector<uint8_t>(kTileElements * element));
    std::vector<TensorRef> values(inputs.size() + program.size()), operands;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t first = t * kTileElements, len = std::min(kTileElements, n - first);
      // A tile is a run of `len` elements; a chain over scalars stays rank 0.
      const Shape tile = out.rank() == 0 ? Shape{} : Shape{len};
      for (size_t i = 0; i < inputs.size(); ++i)
        values[i] = inputs[i].rank() == 0
                        ? inputs[i]
                        : TensorRef{inputs[i].dtype, tile,
                                    static_cast<uint8_t *>(inputs[i].data) + first * element};
      for (size_t k = 0; k < program.size(); ++k) {
        void *target = k + 1 == program.size()
                           ? static_cast<uint8_t *>(out.data) + first * element
                           : scratch[k].data();
        TensorRef result{out.dtype, tile, target};
        operands.clear();
        for (size_t index : program[k].operands)
          operands.push_back(values[index]);
        if (Status s = program[k].kernel(operands, {result}, noAttrs); !s) {
#pragma omp critical(fused_elementwise_failure)
          if (failure)
            failure = opError(op, s.message());
          break;
        }
        values[inputs.size() + k] = result;
      }
    }
  }
  return failure;
}

} // namespace

void addFusedElementwiseKernels(KernelTable &table) {
  table.push_back({"fused_elementwise", fusedElementwiseKernel});
}

} // namespace cpu
} // namespace longctx
