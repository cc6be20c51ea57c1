//===- CudaKernelsTest.cpp - every CUDA kernel against its CPU twin -------===//
//
// On a machine with a GPU: random inputs through the CPU kernel and the CUDA
// kernel of the same name, f32 within 1e-5 relative, reductions within 1e-4.
// Without one, the twin tests skip with the reason and the CUDA entry points
// must still fail cleanly.
//
//===----------------------------------------------------------------------===//
#include "KernelTestUtil.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaKernels.h"
#include "runtime/cuda/KernelWorkspace.h"
#if LONGCTX_HAVE_CUDA
#include "runtime/cuda/kernels/CudaKernelFamilies.h"
#endif

#include <algorithm>

namespace longctx {
namespace {

using namespace kerneltest;

/// The reason to skip, or empty when a GPU is here.
std::string noDevice() {
  CudaDevices devices = probeCudaDevices();
  return devices.names.empty() ? devices.whyNone : std::string();
}

/// Runs `op` on the device with a workspace of the size the compiler plans
/// for it (allocated here, as the arena holds it in an artifact).
Status runWithWorkspace(const char *op, const std::vector<TensorRef> &inputs,
                        const std::vector<TensorRef> &outputs, const AttrMap &attrs) {
  DeviceBuffer workspace;
  const uint64_t bytes = cuda::cudaWorkspaceBytes(op, inputs, outputs, attrs);
  if (Status s = workspace.allocate(bytes); !s)
    return s;
  return runCudaKernel(op, inputs, outputs, attrs, nullptr, {workspace.data(), bytes});
}

/// Runs `op` on the CPU, then (where a GPU is; else the test is skipped)
/// on the GPU with the same inputs: the outputs of each, shaped as `outputs`.
void runTwins(const char *op, const std::vector<const Tensor *> &inputs,
              const std::vector<std::pair<DType, Shape>> &outputs, const AttrMap &attrs,
              std::vector<Tensor> &cpuOut, std::vector<Tensor> &gpuOut) {
  for (const auto &[dtype, shape] : outputs) {
    cpuOut.emplace_back(dtype, shape);
    gpuOut.emplace_back(dtype, shape);
  }
  std::vector<const Tensor *> cpuOutPtrs;
  for (Tensor &t : cpuOut)
    cpuOutPtrs.push_back(&t);
  Status cpu = runMulti(op, inputs, cpuOutPtrs, attrs);
  ASSERT_TRUE(cpu.ok()) << op << " on the CPU: " << cpu.message();
  // The inputs are checked on the CPU everywhere; the twin needs a GPU.
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  std::vector<DeviceBuffer> deviceIn(inputs.size()), deviceOut(outputs.size());
  std::vector<TensorRef> inRefs, outRefs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_TRUE(deviceIn[i].allocate(inputs[i]->bytes()).ok());
    ASSERT_TRUE(deviceIn[i].upload(inputs[i]->ref().data, inputs[i]->bytes()).ok());
    inRefs.push_back({inputs[i]->dtype(), inputs[i]->shape(), deviceIn[i].data()});
  }
  for (size_t i = 0; i < gpuOut.size(); ++i) {
    ASSERT_TRUE(deviceOut[i].allocate(gpuOut[i].bytes()).ok());
    outRefs.push_back({gpuOut[i].dtype(), gpuOut[i].shape(), deviceOut[i].data()});
  }
  Status s = runWithWorkspace(op, inRefs, outRefs, attrs);
  ASSERT_TRUE(s.ok()) << s.message();
  for (size_t i = 0; i < gpuOut.size(); ++i)
    ASSERT_TRUE(deviceOut[i].download(gpuOut[i].ref().data, gpuOut[i].bytes()).ok());
}

/// Float outputs of inputs[0]'s dtype, shaped `outputShapes`, agree within
/// `tol` (relative to max(1, |cpu|)); outputs in `loose` within `looseTol`.
void expectTwins(const char *op, const std::vector<const Tensor *> &inputs,
                 const std::vector<Shape> &outputShapes, const AttrMap &attrs, double tol,
                 std::vector<size_t> loose = {}, double looseTol = 1e-4) {
  std::vector<std::pair<DType, Shape>> outputs;
  for (const Shape &shape : outputShapes)
    outputs.push_back({inputs[0]->dtype(), shape});
  std::vector<Tensor> cpuOut, gpuOut;
  runTwins(op, inputs, outputs, attrs, cpuOut, gpuOut);
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure())
    return;
  for (size_t i = 0; i < gpuOut.size(); ++i) {
    bool isLoose = std::find(loose.begin(), loose.end(), i) != loose.end();
    expectNear(gpuOut[i], values(cpuOut[i]), isLoose ? looseTol : tol,
               std::string(op) + " output " + std::to_string(i));
  }
}

/// Outputs of any dtype, which must agree exactly.
void expectTwinsTyped(const char *op, const std::vector<const Tensor *> &inputs,
                      const std::vector<std::pair<DType, Shape>> &outputs, const AttrMap &attrs) {
  std::vector<Tensor> cpuOut, gpuOut;
  runTwins(op, inputs, outputs, attrs, cpuOut, gpuOut);
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure())
    return;
  for (size_t i = 0; i < gpuOut.size(); ++i)
    EXPECT_EQ(values(gpuOut[i]), values(cpuOut[i])) << op << " output " << i;
}

TEST(CudaKernels, EveryCudaKernelHasACpuTwin) {
  std::vector<std::string> cpu = cpuKernelNames();
  for (const std::string &name : cudaKernelNames())
    EXPECT_NE(std::find(cpu.begin(), cpu.end(), name), cpu.end()) << name;
}

TEST(CudaKernels, WithoutADeviceTheyFailCleanly) {
  if (noDevice().empty())
    GTEST_SKIP() << "a GPU is here";
  Tensor x = randomTensor<float>({4, 8}, -1, 1, 1), w = randomTensor<float>({8}, -1, 1, 2);
  Tensor y(DType::F32, {4, 8});
  DeviceBuffer buffer;
  EXPECT_FALSE(buffer.allocate(64).ok());
  // Host pointers: the checks pass, the launch fails with a message.
  Status s = runCudaKernel("rms_norm", {x.ref(), w.ref()}, {y.ref()}, AttrMap());
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(runCudaKernel("no_such_op", {}, {}, AttrMap()).ok());
}

/// The compiler plans each kernel's scratch from these sizes (no GPU needed).
TEST(CudaKernels, WorkspaceSizesFollowTheOperands) {
  auto bytes = [](const char *op, std::vector<TensorRef> in, std::vector<TensorRef> out,
                  const AttrMap &attrs = AttrMap()) {
    return cuda::cudaWorkspaceBytes(op, in, out, attrs);
  };
  const DType f = DType::F32;
  EXPECT_EQ(bytes("add", {{f, {4}, nullptr}, {f, {4}, nullptr}}, {{f, {4}, nullptr}}), 0u);
  EXPECT_EQ(bytes("matmul", {{f, {4, 8}, nullptr}, {f, {8, 2}, nullptr}}, {{f, {4, 2}, nullptr}}),
            cuda::kCublasWorkspaceBytes);
  EXPECT_EQ(bytes("rms_norm_grad", {{f, {4, 8}, nullptr}, {f, {4, 8}, nullptr}, {f, {8}, nullptr}},
                  {{f, {4, 8}, nullptr}, {f, {8}, nullptr}}),
            8u * sizeof(double));
  EXPECT_EQ(bytes("gather", {{f, {50, 16}, nullptr}, {DType::I64, {2}, nullptr}},
                  {{f, {2, 16}, nullptr}}),
            16u);
  // attention_grad: one double per query row (B * H * S).
  const TensorRef q{f, {2, 4, 7, 8}, nullptr}, kv{f, {2, 2, 7, 8}, nullptr},
      lse{f, {2, 4, 7}, nullptr};
  EXPECT_EQ(bytes("attention_grad", {q, q, kv, kv, q, lse}, {q, kv, kv}), 2u * 4 * 7 * 8);
  // Scan gradient, B=2 S=10 E=3 N=4: chunks of 4 steps; dA (96 B), dB and dC
  // (640 B each), then 6 channels x (3 checkpoints + 5 states + 6 working
  // rows) x 4 doubles, each part 256-byte aligned; truncated to T = 3, the
  // chunk is 3 steps (4 chunks) and two windows of 3 rows come in.
  const TensorRef x{f, {2, 10, 3}, nullptr}, a{f, {3, 4}, nullptr}, bc{f, {2, 10, 4}, nullptr};
  EXPECT_EQ(cuda::scanGradChunkLength(10), 4);
  EXPECT_EQ(bytes("selective_scan_grad", {x, x, x, a, bc, bc}, {x, x, a, bc, bc}),
            1792u + 6 * 14 * 4 * 8);
  EXPECT_EQ(cuda::scanGradChunkLength(10, 3), 3);
  EXPECT_EQ(cuda::scanGradChannelSlots(10, 3), 4 + 4 + 6 + 6);
  // The forward keeps one state row per channel; the state passing none.
  const TensorRef state{f, {2, 3, 4}, nullptr};
  EXPECT_EQ(bytes("selective_scan", {x, x, a, bc, bc}, {x}), 6u * 4 * sizeof(float));
  EXPECT_EQ(bytes("selective_scan_carry", {x, x, a, bc}, {state, state}), 0u);
  // Operands the kernel refuses plan nothing (the kernel reports them).
  EXPECT_EQ(bytes("selective_scan_grad", {x, x}, {x}), 0u);
}

TEST(CudaKernels, ATooSmallWorkspaceIsRefused) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  DeviceBuffer dy, x, w, dx, dw, workspace;
  for (DeviceBuffer *b : {&dy, &x, &dx})
    ASSERT_TRUE(b->allocate(4 * 8 * sizeof(float)).ok());
  for (DeviceBuffer *b : {&w, &dw, &workspace})
    ASSERT_TRUE(b->allocate(8 * sizeof(float)).ok());
  const DType f = DType::F32;
  Status s = runCudaKernel("rms_norm_grad",
                           {{f, {4, 8}, dy.data()}, {f, {4, 8}, x.data()}, {f, {8}, w.data()}},
                           {{f, {4, 8}, dx.data()}, {f, {8}, dw.data()}}, AttrMap(), nullptr,
                           {workspace.data(), 8 * sizeof(float)});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("needs a workspace of 64 bytes, the step has 32"), std::string::npos)
      << s.message();
}

TEST(CudaKernels, ElementwiseMatchesCpu) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  Tensor x = randomTensor<float>({1000}, -3, 3, 10), pos = randomTensor<float>({1000}, 0.1, 3, 11);
  for (const char *op : {"neg", "abs", "relu", "exp", "tanh", "erf", "cos", "sin", "sigmoid",
                         "softplus", "reciprocal"})
    expectTwins(op, {&x}, {{1000}}, AttrMap(), 1e-5);
  for (const char *op : {"log", "sqrt"})
    expectTwins(op, {&pos}, {{1000}}, AttrMap(), 1e-5);
  // numpy broadcasting: [3, 1, 5] with [4, 5] -> [3, 4, 5].
  Tensor a = randomTensor<float>({3, 1, 5}, -2, 2, 12), b = randomTensor<float>({4, 5}, 0.5, 2, 13);
  for (const char *op : {"add", "sub", "mul", "div", "max", "min"})
    expectTwins(op, {&a, &b}, {{3, 4, 5}}, AttrMap(), 1e-5);
  expectTwins("pow", {&b, &a}, {{3, 4, 5}}, AttrMap(), 1e-5); // a positive base
}

TEST(CudaKernels, SoftmaxMatchesCpu) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  Tensor x = randomTensor<float>({6, 333, 7}, -5, 5, 14);
  for (int64_t axis : {2, 1}) { // innermost, and lines 7 apart
    AttrMap attrs;
    attrs.set("axis", axis);
    expectTwins("softmax", {&x}, {{6, 333, 7}}, attrs, 1e-5);
    expectTwins("log_softmax", {&x}, {{6, 333, 7}}, attrs, 1e-5);
  }
}

TEST(CudaKernels, MatMulAndGemmMatchCpu) {
  Tensor a = randomTensor<float>({2, 3, 17, 9}, -1, 1, 20);
  Tensor shared = randomTensor<float>({9, 11}, -1, 1, 21);    // one b: folded into M
  Tensor batched = randomTensor<float>({2, 3, 9, 11}, -1, 1, 22); // strided batch
  Tensor broadcast = randomTensor<float>({3, 9, 11}, -1, 1, 23);  // batch broadcast
  Tensor row = randomTensor<float>({9}, -1, 1, 24);               // 1-D b
  expectTwins("matmul", {&a, &shared}, {{2, 3, 17, 11}}, AttrMap(), 1e-5);
  expectTwins("matmul", {&a, &batched}, {{2, 3, 17, 11}}, AttrMap(), 1e-5);
  expectTwins("matmul", {&a, &broadcast}, {{2, 3, 17, 11}}, AttrMap(), 1e-5);
  expectTwins("matmul", {&a, &row}, {{2, 3, 17}}, AttrMap(), 1e-5);
  Tensor x = randomTensor<float>({13, 7}, -1, 1, 25), w = randomTensor<float>({5, 7}, -1, 1, 26);
  Tensor bias = randomTensor<float>({5}, -1, 1, 27);
  AttrMap attrs;
  attrs.set("trans_b", int64_t(1));
  attrs.set("alpha", 0.5);
  attrs.set("beta", 2.0);
  expectTwins("gemm", {&x, &w, &bias}, {{13, 5}}, attrs, 1e-5);
  attrs.set("trans_b", int64_t(0));
  attrs.set("trans_a", int64_t(1));
  Tensor xt = randomTensor<float>({7, 13}, -1, 1, 28), v = randomTensor<float>({7, 5}, -1, 1, 29);
  expectTwins("gemm", {&xt, &v}, {{13, 5}}, attrs, 1e-5);
}

TEST(CudaKernels, GatherAndScatterAddMatchCpu) {
  Tensor table = randomTensor<float>({50, 16}, -1, 1, 30);
  Tensor ids = tensor<int64_t>({2, 5}, {3, 49, -1, 3, 0, 7, 7, 7, -50, 12}); // repeats, negatives
  AttrMap attrs;
  attrs.set("axis", int64_t(0));
  expectTwins("gather", {&table, &ids}, {{2, 5, 16}}, attrs, 1e-6);
  Tensor grad = randomTensor<float>({2, 5, 16}, -1, 1, 31);
  expectTwins("scatter_add", {&grad, &ids}, {{50, 16}}, attrs, 1e-5);
  Tensor ids32 = tensor<int32_t>({3}, {1, 0, 1});
  attrs.set("axis", int64_t(1));
  Tensor rows = randomTensor<float>({4, 2, 3}, -1, 1, 32);
  expectTwins("gather", {&rows, &ids32}, {{4, 3, 3}}, attrs, 1e-6);

  // Any dtype gathers (an i64 table here).
  Tensor ints = tensor<int64_t>({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  Tensor pick = tensor<int64_t>({3}, {3, 0, -1});
  attrs.set("axis", int64_t(0));
  expectTwinsTyped("gather", {&ints, &pick}, {{DType::I64, {3, 2}}}, attrs);

  // An index out of range fails on the device with the index named.
  if (!noDevice().empty())
    return;
  Tensor bad = tensor<int64_t>({2}, {1, 50});
  attrs.set("axis", int64_t(0));
  DeviceBuffer d, i, o;
  ASSERT_TRUE(d.allocate(table.bytes()).ok());
  ASSERT_TRUE(d.upload(table.ref().data, table.bytes()).ok());
  ASSERT_TRUE(i.allocate(bad.bytes()).ok());
  ASSERT_TRUE(i.upload(bad.ref().data, bad.bytes()).ok());
  ASSERT_TRUE(o.allocate(2 * 16 * sizeof(float)).ok());
  Status st = runWithWorkspace("gather",
                               {{DType::F32, {50, 16}, d.data()}, {DType::I64, {2}, i.data()}},
                               {{DType::F32, {2, 16}, o.data()}}, attrs);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("index 50 out of range for a dim of size 50"), std::string::npos)
      << st.message();
}

TEST(CudaKernels, ConcatAndSliceScatterMatchCpu) {
  Tensor a = randomTensor<float>({3, 2, 5}, -1, 1, 33), b = randomTensor<float>({3, 4, 5}, -1, 1, 34);
  AttrMap axis1;
  axis1.set("axis", int64_t(1));
  expectTwins("concat", {&a, &b}, {{3, 6, 5}}, axis1, 0);
  AttrMap region;
  region.set("starts", std::vector<int64_t>{1, 0, 1});
  region.set("steps", std::vector<int64_t>{1, 2, 2});
  expectTwins("slice_scatter", {&a}, {{4, 4, 10}}, region, 0);
}

TEST(CudaKernels, CrossEntropyMatchesCpu) {
  Tensor logits = randomTensor<float>({2, 9, 37}, -4, 4, 40);
  Tensor targets = tensor<int64_t>({2, 9}, {1, 5, -100, 36, 0, 2, 2, 9, 11,   //
                                            3, 3, 3, -100, -100, 20, 1, 0, 7}); // ignored ones too
  Tensor dloss = tensor<float>({}, {0.75});
  for (int64_t shift : {1, 0})
    for (int64_t reduction : {0, 1}) {
      AttrMap attrs;
      attrs.set("shift", shift);
      attrs.set("reduction", reduction);
      expectTwins("cross_entropy", {&logits, &targets}, {{}}, attrs, 1e-5);
      expectTwins("cross_entropy_grad", {&logits, &targets, &dloss}, {{2, 9, 37}}, attrs, 1e-5);
    }
  Tensor flat = randomTensor<float>({18, 37}, -4, 4, 41);
  Tensor flatTargets = tensor<int32_t>({18}, {1, 5, -100, 36, 0, 2, 2, 9, 11, 3, 3, 3, -100,
                                              -100, 20, 1, 0, 7});
  expectTwins("cross_entropy_and_grad", {&flat, &flatTargets}, {{}, {18, 37}}, AttrMap(), 1e-5);
}

/// Random operands of the selective-scan family and the gradient cases
/// both scan tests run: plain, with a state, and truncated to T = 1, 3
/// (divides the CUDA walk's 7-step chunks rounded to 6), 10 (longer than
/// them) and 40 (longer than the sequence).
template <typename T> struct ScanCases {
  struct Case {
    const char *op;
    std::vector<const Tensor *> inputs;
    std::vector<Shape> outputs;
    AttrMap attrs;
  };

  ScanCases(int64_t batch, int64_t seq, int64_t e, int64_t n, unsigned seed)
      : u(randomTensor<T>({batch, seq, e}, -1, 1, seed)),
        delta(randomTensor<T>({batch, seq, e}, 0.01, 0.5, seed + 1)),
        a(randomTensor<T>({e, n}, -2, -0.1, seed + 2)),
        b(randomTensor<T>({batch, seq, n}, -1, 1, seed + 3)),
        c(randomTensor<T>({batch, seq, n}, -1, 1, seed + 4)),
        h0(randomTensor<T>({batch, e, n}, -1, 1, seed + 5)),
        dy(randomTensor<T>({batch, seq, e}, -1, 1, seed + 6)),
        dfinal(randomTensor<T>({batch, e, n}, -1, 1, seed + 7)), x{batch, seq, e},
        state{batch, e, n}, bc{batch, seq, n}, an{e, n} {
    for (int64_t t : {1, 3, 10, 40})
      windows.push_back(randomTensor<T>({batch, t, e, n}, -1, 1, seed + 10 + unsigned(t)));
  }

  std::vector<Case> gradients() const {
    std::vector<Case> cases = {
        {"selective_scan_grad", {&dy, &u, &delta, &a, &b, &c}, {x, x, an, bc, bc, x}, {}},
        {"selective_scan_state_grad",
         {&dy, &dfinal, &u, &delta, &a, &b, &c, &h0},
         {x, x, an, bc, bc, state, x},
         {}}};
    for (const Tensor &window : windows) {
      Case truncated{"selective_scan_state_grad",
                     {&dy, &window, &u, &delta, &a, &b, &c, &h0},
                     {x, x, an, bc, bc, window.shape(), x},
                     {}};
      truncated.attrs.set("truncate", window.shape()[1]);
      cases.push_back(truncated);
    }
    return cases;
  }

  Tensor u, delta, a, b, c, h0, dy, dfinal;
  std::vector<Tensor> windows;
  Shape x, state, bc, an;
};

TEST(CudaKernels, SelectiveScanMatchesCpu) {
  // State sizes spread over 16 lanes (one value each), 8 lanes with idle
  // ones (5), and a whole warp with two values on some lanes (33).
  for (int64_t n : {16, 5, 33}) {
    const ScanCases<float> scan(2, 37, 19, n, 50);
    expectTwins("selective_scan", {&scan.u, &scan.delta, &scan.a, &scan.b, &scan.c}, {scan.x},
                AttrMap(), 1e-5);
    expectTwins("selective_scan_state",
                {&scan.u, &scan.delta, &scan.a, &scan.b, &scan.c, &scan.h0},
                {scan.x, scan.state}, AttrMap(), 1e-5);
    // dA, dB, dC sum over channels and time: reduction tolerance.
    for (const auto &g : scan.gradients())
      expectTwins(g.op, g.inputs, g.outputs, g.attrs, 1e-5, {2, 3, 4});
    expectTwins("selective_scan_carry", {&scan.dy, &scan.delta, &scan.a, &scan.c},
                {scan.state, scan.state}, AttrMap(), 1e-5);
    Tensor carries = randomTensor<float>({3 * 2, 19, n}, -1, 1, 58);
    Tensor decays = randomTensor<float>({3 * 2, 19, n}, 0, 1, 59);
    expectTwins("selective_scan_carry_combine", {&carries, &decays, &scan.dfinal},
                {{3 * 2, 19, n}, scan.state}, AttrMap(), 1e-5);
  }
}

#if LONGCTX_HAVE_CUDA
/// The scan gradient's per-channel walk (the CUDA kernel's device code, run
/// on the host in the planned workspace layout) against the CPU kernel, in
/// float64: its arithmetic is checked on every machine, GPU or not.
TEST(CudaKernels, ScanGradientWalkMatchesCpuOnTheHost) {
  const ScanCases<double> scan(2, 37, 5, 6, 70);
  for (const auto &g : scan.gradients()) {
    std::vector<Tensor> cpuOut, hostOut;
    std::vector<const Tensor *> cpuPtrs;
    std::vector<TensorRef> inRefs, outRefs;
    for (const Shape &shape : g.outputs) {
      cpuOut.emplace_back(DType::F64, shape);
      hostOut.emplace_back(DType::F64, shape);
    }
    for (Tensor &t : cpuOut)
      cpuPtrs.push_back(&t);
    for (const Tensor *t : g.inputs)
      inRefs.push_back(t->ref());
    for (Tensor &t : hostOut)
      outRefs.push_back(t.ref());
    Status cpu = runMulti(g.op, g.inputs, cpuPtrs, g.attrs);
    ASSERT_TRUE(cpu.ok()) << cpu.message();
    Status walk = cuda::scanGradOnHost(g.op, inRefs, outRefs, g.attrs);
    ASSERT_TRUE(walk.ok()) << walk.message();
    for (size_t i = 0; i < g.outputs.size(); ++i)
      expectNear(hostOut[i], values(cpuOut[i]), 1e-11,
                 std::string(g.op) + " output " + std::to_string(i) + " truncate " +
                     std::to_string(g.attrs.getInt("truncate", 0)));
  }
}
#endif

/// Attention and its gradient (from the CPU's forward) on both backends.
template <typename T>
void expectAttentionTwins(int64_t hd, int64_t hdv, int64_t s, int64_t t, int64_t causal) {
  Tensor q = randomTensor<T>({2, 4, s, hd}, -1, 1, 60);
  Tensor k = randomTensor<T>({2, 2, t, hd}, -1, 1, 61);
  Tensor v = randomTensor<T>({2, 2, t, hdv}, -1, 1, 62);
  AttrMap attrs;
  attrs.set("causal", causal);
  expectTwins("attention", {&q, &k, &v}, {{2, 4, s, hdv}, {2, 4, s}}, attrs, 1e-5);
  Tensor o(dtypeOf<T>(), {2, 4, s, hdv}), lse(dtypeOf<T>(), {2, 4, s});
  ASSERT_TRUE(runMulti("attention", {&q, &k, &v}, {&o, &lse}, attrs).ok());
  Tensor dout = randomTensor<T>({2, 4, s, hdv}, -1, 1, 63);
  expectTwins("attention_grad", {&dout, &q, &k, &v, &o, &lse},
              {{2, 4, s, hd}, {2, 2, t, hd}, {2, 2, t, hdv}}, attrs, 1e-5, {0, 1, 2}, 1e-4);
}

TEST(CudaKernels, AttentionMatchesCpu) {
  // Head dims (D, Dv) that take 1, 2, 4 and 8 values per lane; lengths
  // within one shared-memory tile and across several (70, 133), and no key.
  for (auto [hd, hdv] : {std::pair<int64_t, int64_t>{16, 8}, {24, 40}, {100, 72}, {200, 256}})
    for (auto [s, t] : {std::pair<int64_t, int64_t>{23, 23}, {13, 29}, {29, 13}, {70, 133},
                        {133, 70}, {5, 0}})
      for (int64_t causal : {1, 0})
        expectAttentionTwins<float>(hd, hdv, s, t, causal);
  // float64: smaller tiles (8 rows for the widest heads).
  for (auto [hd, hdv] : {std::pair<int64_t, int64_t>{16, 8}, {200, 256}})
    expectAttentionTwins<double>(hd, hdv, 70, 133, 1);
}

TEST(CudaKernels, ComparisonsWhereAndCastMatchCpu) {
  Tensor a = tensor<float>({2, 3}, {1, -2, 3, 0.5, 7, -1});
  Tensor b = tensor<float>({3}, {1, 0, 3});
  for (const char *op : {"equal", "less", "greater"})
    expectTwinsTyped(op, {&a, &b}, {{DType::Bool, {2, 3}}}, AttrMap());
  Tensor p = boolTensor({2, 2}, {1, 0, 1, 1}), q = boolTensor({2}, {0, 1});
  for (const char *op : {"and", "or", "equal"})
    expectTwinsTyped(op, {&p, &q}, {{DType::Bool, {2, 2}}}, AttrMap());
  expectTwinsTyped("not", {&p}, {{DType::Bool, {2, 2}}}, AttrMap());
  Tensor x = randomTensor<float>({2, 2}, -1, 1, 70), y = randomTensor<float>({2}, -1, 1, 71);
  expectTwinsTyped("where", {&p, &x, &y}, {{DType::F32, {2, 2}}}, AttrMap());
  Tensor f = tensor<float>({5}, {-2.7, -0.5, 0, 0.5, 2.7});
  Tensor i = tensor<int64_t>({5}, {-3, 0, 1, 2, 1LL << 40});
  for (DType to : {DType::I64, DType::I32, DType::Bool, DType::F64})
    expectTwinsTyped("cast", {&f}, {{to, {5}}}, AttrMap());
  for (DType to : {DType::F32, DType::I32, DType::Bool})
    expectTwinsTyped("cast", {&i}, {{to, {5}}}, AttrMap());
  expectTwinsTyped("cast", {&p}, {{DType::F32, {2, 2}}}, AttrMap());
}

TEST(CudaKernels, ReductionsMatchCpu) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  Tensor x = randomTensor<float>({5, 64, 3, 9}, -2, 2, 15);
  struct Case {
    std::vector<int64_t> axes;
    Shape out;
  };
  for (const Case &c : {Case{{1}, {5, 3, 9}}, Case{{0, 2}, {1, 64, 1, 9}}, Case{{}, {}},
                        Case{{3}, {5, 64, 3, 1}}}) {
    AttrMap attrs;
    if (!c.axes.empty())
      attrs.set("axes", c.axes);
    for (const char *op : {"reduce_sum", "reduce_mean", "reduce_max"})
      expectTwins(op, {&x}, {c.out}, attrs, 1e-4);
  }
}

TEST(CudaKernels, LayoutMatchesCpu) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  Tensor x = randomTensor<float>({4, 6, 5}, -1, 1, 16);
  expectTwins("identity", {&x}, {{4, 6, 5}}, AttrMap(), 0);
  expectTwins("reshape", {&x}, {{24, 5}}, AttrMap(), 0);
  AttrMap perm;
  perm.set("perm", std::vector<int64_t>{2, 0, 1});
  expectTwins("transpose", {&x}, {{5, 4, 6}}, perm, 0);
  AttrMap region;
  region.set("starts", std::vector<int64_t>{1, 0, 4});
  region.set("steps", std::vector<int64_t>{2, 3, -2});
  expectTwins("slice", {&x}, {{2, 2, 3}}, region, 0);
  Tensor row = randomTensor<float>({1, 6, 1}, -1, 1, 17);
  expectTwins("expand", {&row}, {{4, 6, 5}}, AttrMap(), 0);
}

TEST(CudaKernels, RmsNormMatchesCpu) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  Tensor x = randomTensor<float>({37, 300}, -2, 2, 3), w = randomTensor<float>({300}, 0.5, 1.5, 4);
  expectTwins("rms_norm", {&x, &w}, {{37, 300}}, AttrMap(), 1e-5);
  Tensor dy = randomTensor<float>({37, 300}, -1, 1, 5);
  expectTwins("rms_norm_grad", {&dy, &x, &w}, {{37, 300}, {300}}, AttrMap(), 1e-5, {1});
}

TEST(CudaKernels, OptimizersMatchCpu) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  const int64_t n = 100003;
  Tensor p = randomTensor<float>({n}, -1, 1, 6), m = randomTensor<float>({n}, -0.1, 0.1, 7);
  Tensor v = randomTensor<float>({n}, 0, 0.01, 8), g = randomTensor<float>({n}, -1, 1, 9);
  Tensor lr = tensor<float>({}, {1e-3}), scale = tensor<float>({}, {0.5});
  Tensor step = tensor<int64_t>({}, {3});
  expectTwins("adamw_update", {&p, &m, &v, &g, &lr, &step, &scale}, {{n}, {n}, {n}}, AttrMap(),
              1e-5);
  AttrMap sgd;
  sgd.set("momentum", 0.9);
  sgd.set("weight_decay", 0.01);
  sgd.set("nesterov", int64_t(1));
  expectTwins("sgd_update", {&p, &m, &g, &lr, &scale}, {{n}, {n}}, sgd, 1e-5);
}

// A step below 1 is refused as on the CPU: read back when the kernel runs
// alone, and from its record when an executor defers the check.
TEST(CudaKernels, AdamWRefusesAStepBelowOne) {
  if (std::string why = noDevice(); !why.empty())
    GTEST_SKIP() << "no CUDA device: " << why;
  std::vector<DeviceBuffer> buffers(8);
  for (DeviceBuffer &b : buffers)
    ASSERT_TRUE(b.allocate(4 * sizeof(float)).ok());
  const int64_t zero = 0;
  ASSERT_TRUE(buffers[5].upload(&zero, sizeof zero).ok());
  const float one = 1;
  ASSERT_TRUE(buffers[4].upload(&one, sizeof one).ok());
  ASSERT_TRUE(buffers[6].upload(&one, sizeof one).ok());
  const DType f = DType::F32;
  std::vector<TensorRef> in = {{f, {4}, buffers[0].data()}, {f, {4}, buffers[1].data()},
                               {f, {4}, buffers[2].data()}, {f, {4}, buffers[3].data()},
                               {f, {}, buffers[4].data()},  {DType::I64, {}, buffers[5].data()},
                               {f, {}, buffers[6].data()}};
  std::vector<TensorRef> out = {in[0], in[1], in[2]};
  Status s = runCudaKernel("adamw_update", in, out, AttrMap());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("step must be >= 1, got 0"), std::string::npos) << s.message();
  ASSERT_TRUE(cudaKernelChecksData("adamw_update"));
  DeviceWorkspace deferred{nullptr, 0, buffers[7].data()};
  ASSERT_TRUE(runCudaKernel("adamw_update", in, out, AttrMap(), nullptr, deferred).ok());
  unsigned char record[kCheckRecordBytes] = {};
  ASSERT_TRUE(buffers[7].download(record, sizeof record).ok());
  s = cudaCheckRecord("adamw_update", record, in, out, AttrMap());
  EXPECT_NE(s.message().find("step must be >= 1, got 0"), std::string::npos) << s.message();
}

} // namespace
} // namespace longctx
