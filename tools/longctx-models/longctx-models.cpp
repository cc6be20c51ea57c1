//===- longctx-models.cpp - Writes synthetic Llama/Mamba ONNX models ------===//
//
// Thin driver over compiler/models: parses the command line, builds the model
// and serializes it. All graph construction lives in the library.
//
//===----------------------------------------------------------------------===//

#include "compiler/models/Models.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#ifndef LONGCTX_VERSION
#define LONGCTX_VERSION "0.1.0"
#endif

using namespace longctx::models;

static const char kHelp[] =
    R"(longctx-models - write synthetic decoder models as ONNX files

Batch and sequence length are symbolic ("batch", "seq"); positions, rotary
tables and the causal mask are computed from Shape(input_ids), so one file
serves every context length.

USAGE
  longctx-models llama --dim D --layers L --heads H --kv-heads G --ffn F
                       --vocab V [--opset N] [common options] -o FILE
  longctx-models mamba --dim D --layers L --expand E --state N --vocab V
                       [--dt-rank R] [common options] -o FILE
  longctx-models hybrid --dim D --layers L --expand E --state N --vocab V
                       --attention-every K --heads H --kv-heads G --ffn F
                       [--dt-rank R] [common options] -o FILE
  longctx-models --help | --version

LLAMA OPTIONS (RMSNorm, GQA attention with RoPE, SwiGLU MLP, untied head)
  --dim D        hidden size
  --layers L     number of decoder layers
  --heads H      attention heads; must divide D, and D/H must be even (RoPE)
  --kv-heads G   key/value heads (grouped-query attention); must divide H
  --ffn F        SwiGLU hidden size
  --vocab V      vocabulary size
  --opset N      default-domain opset, 13..17 (default 17)

MAMBA OPTIONS (Mamba-1 blocks without conv, longctx.SelectiveScan, tied head)
  --dim D        hidden size
  --layers L     number of blocks
  --expand E     inner width is E*D
  --state N      SSM state size per channel
  --vocab V      vocabulary size
  --dt-rank R    rank of the delta projection (default ceil(D/16))

HYBRID OPTIONS (Jamba-style: Mamba blocks with Llama blocks interleaved)
  the MAMBA OPTIONS, and
  --attention-every K  layer i is a Llama block (attention + SwiGLU MLP) when
                 i % K == K - 1, a Mamba block otherwise
  --heads H, --kv-heads G, --ffn F   the Llama blocks' settings

COMMON OPTIONS
  -o FILE        output model path (required)
  --seed N       weight seed, 0..2^64-1 (default 0); splitmix64 streams keyed
                 by (seed, tensor name)
  --no-weights   write shapes only: every initializer references external data
                 in "<FILE name>.weights", which is NOT written
  -h, --help     show this help
  --version      show the version

EXAMPLES
  # Tiny Llama for tests
  longctx-models llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 \
      --vocab 256 --seed 1 -o tiny-llama.onnx
  # Llama-3-8B shapes, no weights (a small file, written instantly)
  longctx-models llama --dim 4096 --layers 32 --heads 32 --kv-heads 8 \
      --ffn 14336 --vocab 128256 --no-weights -o llama3-8b.onnx
  # Tiny Mamba
  longctx-models mamba --dim 64 --layers 2 --expand 2 --state 16 --vocab 256 \
      -o tiny-mamba.onnx
  # Tiny hybrid: Mamba, attention, Mamba, attention
  longctx-models hybrid --dim 64 --layers 4 --expand 2 --state 16 --vocab 256 \
      --attention-every 2 --heads 4 --kv-heads 2 --ffn 128 -o tiny-hybrid.onnx
)";

static int fail(const std::string &message) {
  std::fprintf(stderr, "longctx-models: error: %s\n", message.c_str());
  return 1;
}

/// Strict decimal parse: digits only, no sign, no trailing junk, no overflow.
static bool parseUnsigned(const std::string &text, uint64_t &value) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  errno = 0;
  char *end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0')
    return false;
  value = v;
  return true;
}

static std::string quoteArg(const std::string &arg) {
  if (!arg.empty() &&
      arg.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos)
    return arg;
  std::string quoted = "'";
  for (char ch : arg)
    quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

static std::string baseName(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

namespace {
/// An integer option and where its parsed value goes.
struct IntOption {
  const char *flag;
  int64_t *target;
  bool required;
  bool seen = false;
};
} // namespace

static int writeModel(const onnx::ModelProto &model, const std::string &path) {
  size_t size = model.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    return fail("model is " + std::to_string(size >> 20) +
                " MiB, over the 2 GiB protobuf limit; use --no-weights");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return fail("cannot open '" + path +
                "' for writing: " + std::strerror(errno));
  bool ok = model.SerializeToOstream(&out);
  out.close();
  if (!ok || out.fail()) {
    std::remove(path.c_str());
    return fail("failed to write '" + path + "'");
  }
  return 0;
}

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string &a : args) {
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("longctx-models %s\n", LONGCTX_VERSION);
      return 0;
    }
  }
  if (args.empty())
    return fail("missing model kind 'llama', 'mamba' or 'hybrid' (see --help)");
  const std::string kind = args[0];
  if (kind != "llama" && kind != "mamba" && kind != "hybrid")
    return fail("unknown model kind '" + kind +
                "', expected 'llama', 'mamba' or 'hybrid' (see --help)");

  LlamaConfig llama;
  MambaConfig mamba;
  ModelOptions options;
  std::vector<IntOption> intOptions =
      kind == "llama"
          ? std::vector<IntOption>{{"--dim", &llama.dim, true},
                                   {"--layers", &llama.layers, true},
                                   {"--heads", &llama.heads, true},
                                   {"--kv-heads", &llama.kvHeads, true},
                                   {"--ffn", &llama.ffn, true},
                                   {"--vocab", &llama.vocab, true},
                                   {"--opset", &llama.opset, false}}
          : std::vector<IntOption>{{"--dim", &mamba.dim, true},
                                   {"--layers", &mamba.layers, true},
                                   {"--expand", &mamba.expand, true},
                                   {"--state", &mamba.state, true},
                                   {"--vocab", &mamba.vocab, true},
                                   {"--dt-rank", &mamba.dtRank, false}};
  if (kind == "hybrid")
    intOptions.insert(intOptions.end(), {{"--attention-every", &mamba.attentionEvery, true},
                                         {"--heads", &mamba.heads, true},
                                         {"--kv-heads", &mamba.kvHeads, true},
                                         {"--ffn", &mamba.ffn, true}});

  std::string output;
  bool noWeights = false;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string flag = args[i], value;
    bool hasInlineValue = false;
    // Accept --flag=value too; it is what people type after other tools.
    size_t eq = flag.find('=');
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      hasInlineValue = true;
    }
    auto takeValue = [&]() -> bool {
      if (hasInlineValue)
        return true;
      // "--dim -o x" is a forgotten value, not the number "-o".
      if (i + 1 >= args.size() ||
          (args[i + 1].size() > 1 && args[i + 1][0] == '-'))
        return false;
      value = args[++i];
      return true;
    };

    if (flag == "--no-weights" && !hasInlineValue) {
      noWeights = true;
      continue;
    }
    if (flag == "-o" || flag == "--output") {
      if (!takeValue() || value.empty())
        return fail("missing value for " + flag);
      output = value;
      continue;
    }
    if (flag == "--seed") {
      if (!takeValue())
        return fail("missing value for --seed");
      if (!parseUnsigned(value, options.seed))
        return fail("invalid number '" + value + "' for --seed");
      continue;
    }
    IntOption *opt = nullptr;
    for (IntOption &o : intOptions)
      if (flag == o.flag)
        opt = &o;
    if (!opt)
      return fail("unknown option '" + args[i] + "' for " + kind +
                  " (see --help)");
    if (!takeValue())
      return fail(std::string("missing value for ") + opt->flag);
    uint64_t parsed;
    if (!parseUnsigned(value, parsed) || parsed == 0 ||
        parsed > static_cast<uint64_t>(INT32_MAX))
      return fail("invalid number '" + value + "' for " + opt->flag +
                  " (expected an integer in 1.." + std::to_string(INT32_MAX) +
                  ")");
    *opt->target = static_cast<int64_t>(parsed);
    opt->seen = true;
  }

  for (const IntOption &o : intOptions)
    if (o.required && !o.seen)
      return fail(std::string("missing required option ") + o.flag);
  if (output.empty())
    return fail("missing required option -o FILE");

  if (noWeights)
    options.externalDataLocation = baseName(output) + ".weights";
  options.docString = "longctx-models";
  for (const std::string &a : args)
    options.docString += " " + quoteArg(a);

  if (kind == "llama") {
    llama.options = options;
    std::string error = validateConfig(llama);
    if (!error.empty())
      return fail(error);
    return writeModel(buildLlama(llama), output);
  }
  mamba.options = options;
  std::string error = validateConfig(mamba);
  if (!error.empty())
    return fail(error);
  return writeModel(buildMamba(mamba), output);
}
