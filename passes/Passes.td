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

def LcAppendLoss : Pass<"lc-append-loss", "mlir::ModuleOp"> {
  let summary = "Make @main return the next-token cross-entropy loss of its logits";
  let description = [{
    Replaces the results of `func.func @main` by one scalar: the mean
    cross-entropy of the `logits` result (`[B, S, V]`) where position s
    predicts token s+1 (`logits[:, :-1]` against `targets[:, 1:]`, over
    B*(S-1) positions). The targets are the `labels` input when the graph has
    one (positions labelled -100 are ignored) and `input_ids` otherwise.
  }];
  let options = [
    Option<"logitsName", "logits", "std::string", "\"logits\"",
           "The result holding the logits (default: logits, else the first result)">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcAutodiff : Pass<"lc-autodiff", "mlir::ModuleOp"> {
  let summary = "Reverse-mode differentiation of the loss w.r.t. every parameter";
  let description = [{
    `func.func @main` must return a scalar float loss first. Appends its
    backward: the op interface's vector-Jacobian product of every op between
    the parameters (`lc.param`) and the loss, in reverse order, with fan-out
    cotangents summed. Activity analysis skips values that no parameter
    reaches and integer/bool/index operands. Returns the loss followed by one
    gradient per trainable parameter (`lc.grad_of` names it). Reports, in one
    diagnostic each, every op on the path that lacks a gradient rule and every
    parameter that has no differentiable path to the loss.
  }];
  let options = [
    ListOption<"freeze", "freeze", "std::string",
               "Parameters (initializer names) that get no gradient">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcOptimizer : Pass<"lc-optimizer", "mlir::ModuleOp"> {
  let summary = "Append the optimizer update of every parameter to the training step";
  let description = [{
    After lc-autodiff: @main returns the loss and one gradient per parameter.
    Adds the scalar inputs `lr` and `step` (the runtime feeds the schedule),
    computes the global-norm clipping factor when `clip-norm` > 0, and emits
    one `lc.adamw_update` or `lc.sgd_update` per parameter. The gradients stay
    results, so the runtime can dump them.
  }];
  let options = [
    Option<"kind", "kind", "std::string", "\"adamw\"", "adamw or sgd">,
    Option<"beta1", "beta1", "double", "0.9", "AdamW first-moment decay">,
    Option<"beta2", "beta2", "double", "0.999", "AdamW second-moment decay">,
    Option<"epsilon", "epsilon", "double", "1e-8", "AdamW denominator epsilon">,
    Option<"weightDecay", "weight-decay", "double", "0.0", "Decoupled (AdamW) or L2 (SGD) weight decay">,
    Option<"momentum", "momentum", "double", "0.0", "SGD momentum">,
    Option<"nesterov", "nesterov", "bool", "false", "SGD Nesterov momentum">,
    Option<"clipNorm", "clip-norm", "double", "0.0", "Clip the global gradient norm to this (0: off)">,
    Option<"inBackward", "in-backward", "bool", "false",
           "Update each parameter as soon as its gradient is complete and its last reader "
           "has run, and drop the gradients from the results, so they do not all live at once">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcFuseAttention : Pass<"lc-fuse-attention", "mlir::ModuleOp"> {
  let summary = "Replace exported scaled dot-product attention by lc.attention";
  let description = [{
    Finds `softmax(scale * q k^T [masked]) v` as exporters write it: a
    matmul with a transposed key, an optional Mul/Div by a scalar, an
    optional causal mask applied with Where (either orientation, any very
    negative fill, the mask a constant or a Trilu of ones), a softmax over the
    last axis, and a matmul with the values. Grouped-query key/value
    repetition (reshape -> expand -> reshape) is peeled so the fused op reads
    the Hk original heads. Masks that are not causal are left
    alone, with a remark saying why.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcFuseRmsNorm : Pass<"lc-fuse-rms-norm", "mlir::ModuleOp"> {
  let summary = "Replace written-out RMSNorm by lc.rms_norm";
  let description = [{
    Finds `x * 1/sqrt(mean(x^2, last dim) + eps) * w` as exporters write it
    (square as Mul or Pow, the inverse as Reciprocal, Div(1, .) or a Div of
    x) and replaces it by one `lc.rms_norm`, whose backward needs only x.
    The intermediate ops die when nothing else uses them.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcFuseGatedMlp : Pass<"lc-fuse-gated-mlp", "mlir::ModuleOp"> {
  let summary = "Replace exported SiLU-gated MLPs by lc.gated_mlp";
  let description = [{
    Finds `(silu(x Wg) * (x Wu)) Wd` with silu written as `g * sigmoid(g)`
    (either operand order) and the three weights matrices, and replaces it by
    one `lc.gated_mlp`, whose kernel streams chunks of rows and whose backward
    recomputes the hidden activations instead of keeping them.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcConvertFloatType : Pass<"lc-convert-float-type", "mlir::ModuleOp"> {
  let summary = "Turn every f32 tensor into `to` (bf16 or f16): pure low-precision training";
  let description = [{
    Weights, activations, gradients and optimizer inputs all take the target
    type; constants are rounded to it. Used by `longctx-compile --dtype bf16`
    for memory plans (the CPU kernels execute f32 and f64).
  }];
  let options = [
    Option<"to", "to", "std::string", "\"bf16\"", "bf16, f16 or f32">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcSchedule : Pass<"lc-schedule", "mlir::func::FuncOp"> {
  let summary = "Reorder the step's ops to lower its peak of live memory";
  let description = [{
    Simulates the live arena bytes of several topological orders of the body
    and keeps the one with the lowest peak (ties keep the current order), as
    XLA's memory scheduler does: the current (definition) order, a
    depth-first post-order from the results and the updates, and a greedy
    list order that always runs, among the ready ops, the one that frees the
    most bytes net of what it allocates, so saved activations die as soon as
    their backward has run. Besides data dependences it keeps each optimizer
    update after every reader of its parameter and each recomputed op
    (`lc.recompute`) after the op it was placed behind.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcPlanMemory : Pass<"lc-plan-memory", "mlir::func::FuncOp"> {
  let summary = "Place every arena buffer of the step and attach the plan to the IR";
  let description = [{
    Liveness on the current order, then offsets in one arena: best fit over
    live intervals in size-descending and lifetime-descending order, the
    smaller kept, 256-byte alignment, an elementwise op's output reusing a
    same-typed operand that dies at it. Each op gets `lc.offsets` (one arena
    offset per result) and the function `lc.memory_plan` (arena, LOAD,
    weights and constants, optimizer state and peak bytes); the artifact
    builder plans the same way, so the artifact's arena equals it.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcRecompute : Pass<"lc-recompute", "mlir::func::FuncOp"> {
  let summary = "Activation checkpointing: recompute forward values in the backward";
  let description = [{
    On a training step (after lc-autodiff, and lc-optimizer if any): the
    forward is cut at its separators, activations that alone carry the
    forward (residual-stream values), grouped by the repeating pattern of
    the segments between them into layers. With `policy=layer` every layer
    keeps only its input: the activations its backward reads are recomputed
    (clones marked `lc.recompute`) right before the first backward op that
    needs them. `policy=auto` recomputes whole layers, cheapest recompute
    work per saved byte first, only as many as it takes for the planned peak
    to fit `budget` bytes (all of them when nothing fits). Run it after CSE,
    which would merge the clones back, and before lc-schedule.
  }];
  let options = [
    Option<"policy", "policy", "std::string", "\"layer\"", "none, layer or auto">,
    Option<"budget", "budget", "uint64_t", "0",
           "policy=auto: the bytes the planned peak must fit in">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcMiniSequence : Pass<"lc-mini-sequence", "mlir::func::FuncOp"> {
  let summary = "Chunk MLPs and the LM head + loss over the sequence (Mini-Sequence Transformer)";
  let description = [{
    Wraps, in `lc.mini_sequence` ops of `chunks` chunks over the tokens:
    - every MLP: a projection `h Wd` (+ bias) of a hidden activation that is
      computed row by row from one input `x` through projections by weights
      (`x W`) and elementwise ops (gated or plain, as exported or fused);
    - the LM head with its loss: `cross_entropy(x Wout, targets)`. The loss
      becomes the chunks' summed token losses divided by the global count of
      counted (non-ignored) targets, so no S x V logits ever exist.
    Autodiff then gives each its chunked backward (each chunk's forward is
    recomputed there). Run it after lc-append-loss and before lc-autodiff;
    `lc-lower-mini-sequence` unrolls the loops before planning. With
    `remarks`, every projection or loss it leaves alone gets a remark saying
    why.
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", "4", "Chunks per sequence (M)">,
    Option<"remarks", "remarks", "bool", "false",
           "Remark on each candidate left alone, with the reason">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcLowerMiniSequence : Pass<"lc-lower-mini-sequence", "mlir::func::FuncOp"> {
  let summary = "Unroll lc.mini_sequence into static per-chunk ops";
  let description = [{
    Each chunk's inputs are sliced off (the last chunk may be shorter: its
    ops get their types inferred again), its body is cloned, and the chunks'
    values are concatenated or summed. Runs after the last CSE (which would
    merge a backward chunk's recomputed forward with the forward's) and
    before lc-recompute, lc-schedule and lc-plan-memory.

    A loop with `lc.parallel_workers = W` (no carried state) has its chunks
    split into W contiguous runs, one per worker; every op of worker w's
    chunks gets `lc.lane = [group, w]` (one group per loop), summed results
    are summed per worker and the W partial sums added after the group.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcAdjointShard : Pass<"lc-adjoint-shard", "mlir::func::FuncOp"> {
  let summary = "Shard residual SSM layers over time: state carried between shards, exact backward";
  let description = [{
    Adjoint sharding (Xu et al. 2025), exact form. Each residual SSM layer
    `x + f(x)`, where f is token-wise (projections by weights, elementwise
    ops, norms over features, feature slices) except for one
    `lc.selective_scan`, becomes an `lc.mini_sequence` over `shards` time
    shards that carries the scan state from shard to shard
    (`lc.selective_scan_state`). The forward keeps only the layer input and
    the states at shard boundaries; autodiff turns the loop into a reverse
    sweep over the shards that recomputes each shard from its input rows and
    starting state and carries the state adjoint to the shard before, so the
    gradients equal plain backprop. Run before lc-autodiff. A layer around a
    scan that mixes tokens in any other way is refused with the reason.

    `truncate=T` (T >= 1): truncated adjoint sharding. Each output
    cotangent reaches back at most T steps into the scan's states (the
    token-wise parts and the residual stream stay exact); the reverse sweep
    carries a [B, T, E, N] adjoint window instead of the state's cotangent,
    so the backward stays linear in S. T >= S is exact and leaves the scan
    untruncated.

    `mode=paper` marks the layers for lc-adjoint-paper (run after
    lc-autodiff), which drives every layer's backward by the top layer's
    output cotangent as the paper's Proposition 3 does: exact only for the
    top layer; a warning says so.

    `parallel=W` (W > 1, exact without truncate): the layers' backward
    shards run W at a time. The loops are marked for
    lc-adjoint-state-passing (run after lc-autodiff), which splits each
    backward into independent shards around a short sequential combine.
  }];
  let options = [
    Option<"shards", "shards", "int64_t", "4", "Time shards per sequence (K)">,
    Option<"parallel", "parallel", "int64_t", "1",
           "Backward shards run at once (1: one after the other)">,
    Option<"truncate", "truncate", "int64_t", "0",
           "Steps each cotangent reaches back in the scans (0: all, exact)">,
    Option<"mode", "mode", "std::string", "\"exact\"",
           "exact (gradients equal backprop) or paper (Proposition 3, marks the layers for "
           "lc-adjoint-paper)">,
  ];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcAdjointStatePassing : Pass<"lc-adjoint-state-passing", "mlir::func::FuncOp"> {
  let summary = "Split a sharded SSM layer's reverse sweep into parallel shards (state passing)";
  let description = [{
    After lc-adjoint-shard{parallel=W} and lc-autodiff. A layer's backward
    carries the state's cotangent from shard to shard, so its shards run one
    after the other. That cotangent is linear in the one carried in: each
    shard sends back `carry + decay * incoming`, where carry and decay depend
    on the shard alone (`lc.selective_scan_carry`). The reverse loop becomes
    (1) a loop of independent shards computing (carry, decay) from their
    recomputed dy, delta and C, (2) `lc.selective_scan_carry_combine`, K
    small steps giving each shard its incoming cotangent, and (3) the
    original shard backward, now independent per shard. Loops (1) and (3)
    get `lc.parallel_workers = W`: lc-lower-mini-sequence splits their
    shards among W workers that the runtime runs concurrently, with memory
    planned so that concurrent workers never share arena space. Gradients
    equal the sequential sweep's up to summation order; the price is the
    recompute of (1).
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcFuseScanRecompute : Pass<"lc-fuse-scan-recompute", "mlir::func::FuncOp"> {
  let summary = "Take a recomputed scan's output from its gradient, which recomputes the states anyway";
  let description = [{
    A backward that recomputes a layer (adjoint shards, lc-recompute) runs
    the forward scan again only for its output y (a gate's gradient reads
    it), next to the scan's gradient, which recomputes the same states. When
    a `selective_scan[_state]` and a `selective_scan[_state]_grad` read the
    same operands and the gradient does not depend on the scan, the gradient
    gets `with_output` and returns y, the scan goes away, and the block is
    reordered so y's readers follow the gradient. Run after lc-recompute.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcFuseElementwise : Pass<"lc-fuse-elementwise", "mlir::func::FuncOp"> {
  let summary = "Fuse chains of elementwise ops into lc.fused_elementwise";
  let description = [{
    Grows a fused op from each elementwise float op backwards through
    operands that only it reads (so no intermediate is needed elsewhere) and
    that have its shape; scalars (rank 0) are read as they are. Every chain
    of two or more ops becomes one `lc.fused_elementwise`: one pass over the
    elements, no intermediates in memory, one kernel for a GPU backend to
    generate. Runs late (after autodiff and recompute, before scheduling):
    the fused op has no gradient rule.
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

def LcAdjointPaper : Pass<"lc-adjoint-paper", "mlir::func::FuncOp"> {
  let summary = "Adjoint sharding as the paper writes it: every layer driven by the top cotangent";
  let description = [{
    After lc-adjoint-shard{mode=paper} and lc-autodiff: the backward of every
    layer lc-adjoint-shard marked reads the cotangent of the top sharded
    layer's output instead of its own output's (Xu et al. 2025, Proposition
    3). This is exact only for the top layer; it exists so users can compare
    with the exact form (lc-adjoint-shard warns). Layers sharded in exact
    mode are left alone. (`longctx-compile --adjoint-mode paper`.)
  }];
  let dependentDialects = ["::longctx::lc::LcDialect"];
}

#endif // LONGCTX_PASSES_TD
