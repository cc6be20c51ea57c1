//===- LcOps.td - Operations of the `lc` dialect -----------*- tablegen -*-===//
#ifndef LC_OPS_TD
#define LC_OPS_TD

include "LcDialect.td"
include "LcInterfaces.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Lc_Tensor : StaticShapeTensorOf<[AnyFloat, AnySignlessInteger]>;
def Lc_FloatTensor : StaticShapeTensorOf<[AnyFloat]>;
def Lc_NumericTensor : StaticShapeTensorOf<[AnyFloat, I32, I64]>;
def Lc_BoolTensor : StaticShapeTensorOf<[I1]>;
def Lc_IndexTensor : StaticShapeTensorOf<[I32, I64]>;

//===----------------------------------------------------------------------===//
// Base classes
//===----------------------------------------------------------------------===//

// Every op folds when all its operands are constant and the result is small:
// the runtime's CPU kernel of the same name computes the value. Every forward
// op has a gradient rule (GradientRules.cpp).
class Lc_Op<string mnemonic, list<Trait> traits = []>
    : Op<Lc_Dialect, mnemonic, !listconcat(traits,
         [Pure, DeclareOpInterfaceMethods<Lc_GradientOpInterface>])> {
  let hasFolder = 1;
}

// Ops that only backward passes create: pure, kernel-backed, no gradient
// rule of their own (longctx does not take second derivatives).
class Lc_BackwardOp<string mnemonic, list<Trait> traits = []>
    : Op<Lc_Dialect, mnemonic, !listconcat(traits, [Pure])>;

class Lc_UnaryOp<string mnemonic, Type operandType, string desc>
    : Lc_Op<mnemonic, [SameOperandsAndResultType]> {
  let summary = desc;
  let description = "Elementwise " # desc # " with ONNX semantics.";
  let arguments = (ins operandType:$input);
  let results = (outs operandType:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

// Binary ops broadcast their operands like numpy (ONNX multidirectional
// broadcasting); the result type is inferred.
class Lc_BinaryOp<string mnemonic, Type operandType, Type resultType, string desc>
    : Lc_Op<mnemonic, [InferTypeOpAdaptor]> {
  let summary = desc;
  let description = "Elementwise " # desc # " with ONNX multidirectional broadcasting.";
  let arguments = (ins operandType:$lhs, operandType:$rhs);
  let results = (outs resultType:$output);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($output)";
  let hasVerifier = 1;
}

class Lc_ArithOp<string mnemonic, Type operandType, string desc>
    : Lc_BinaryOp<mnemonic, operandType, operandType, desc>;
class Lc_CompareOp<string mnemonic, Type operandType, string desc>
    : Lc_BinaryOp<mnemonic, operandType, Lc_BoolTensor, desc>;

//===----------------------------------------------------------------------===//
// Leaves: parameters and constants
//===----------------------------------------------------------------------===//

def Lc_ParamOp : Op<Lc_Dialect, "param", [Pure]> {
  let summary = "A trainable parameter (an ONNX float initializer)";
  let description = [{
    Reads the model parameter `name`. Its data lives beside the IR (in the
    importer's weight store, then in the artifact), never in an attribute, so
    large models stay cheap to print, copy and plan.
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$name attr-dict `:` type($output)";
}

def Lc_ConstantOp : Op<Lc_Dialect, "constant", [ConstantLike, Pure,
    AllTypesMatch<["value", "output"]>]> {
  let summary = "A constant tensor";
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

def Lc_AddOp : Lc_ArithOp<"add", Lc_NumericTensor, "addition">;
def Lc_SubOp : Lc_ArithOp<"sub", Lc_NumericTensor, "subtraction">;
def Lc_MulOp : Lc_ArithOp<"mul", Lc_NumericTensor, "multiplication">;
def Lc_DivOp : Lc_ArithOp<"div", Lc_NumericTensor, "division">;
def Lc_PowOp : Lc_ArithOp<"pow", Lc_FloatTensor, "power">;
def Lc_MaxOp : Lc_ArithOp<"max", Lc_NumericTensor, "maximum">;
def Lc_MinOp : Lc_ArithOp<"min", Lc_NumericTensor, "minimum">;
def Lc_EqualOp : Lc_CompareOp<"equal", Lc_Tensor, "equality test">;
def Lc_LessOp : Lc_CompareOp<"less", Lc_NumericTensor, "less-than test">;
def Lc_GreaterOp : Lc_CompareOp<"greater", Lc_NumericTensor, "greater-than test">;
def Lc_AndOp : Lc_ArithOp<"and", Lc_BoolTensor, "logical and">;
def Lc_OrOp : Lc_ArithOp<"or", Lc_BoolTensor, "logical or">;

def Lc_NegOp : Lc_UnaryOp<"neg", Lc_NumericTensor, "negation">;
def Lc_AbsOp : Lc_UnaryOp<"abs", Lc_NumericTensor, "absolute value">;
def Lc_ReluOp : Lc_UnaryOp<"relu", Lc_NumericTensor, "rectified linear unit">;
def Lc_ExpOp : Lc_UnaryOp<"exp", Lc_FloatTensor, "exponential">;
def Lc_LogOp : Lc_UnaryOp<"log", Lc_FloatTensor, "natural logarithm">;
def Lc_SqrtOp : Lc_UnaryOp<"sqrt", Lc_FloatTensor, "square root">;
def Lc_ReciprocalOp : Lc_UnaryOp<"reciprocal", Lc_FloatTensor, "reciprocal">;
def Lc_TanhOp : Lc_UnaryOp<"tanh", Lc_FloatTensor, "hyperbolic tangent">;
def Lc_ErfOp : Lc_UnaryOp<"erf", Lc_FloatTensor, "error function">;
def Lc_SigmoidOp : Lc_UnaryOp<"sigmoid", Lc_FloatTensor, "logistic sigmoid">;
def Lc_SoftplusOp : Lc_UnaryOp<"softplus", Lc_FloatTensor,
    "softplus log(1+exp(x)), computed stably">;
def Lc_CosOp : Lc_UnaryOp<"cos", Lc_FloatTensor, "cosine">;
def Lc_SinOp : Lc_UnaryOp<"sin", Lc_FloatTensor, "sine">;
def Lc_NotOp : Lc_UnaryOp<"not", Lc_BoolTensor, "logical negation">;
def Lc_IdentityOp : Lc_UnaryOp<"identity", Lc_Tensor, "copy">;

def Lc_CastOp : Lc_Op<"cast"> {
  let summary = "Element type conversion (ONNX Cast)";
  let description = [{
    Float to integer truncates toward zero; anything to i1 is `x != 0`.
  }];
  let arguments = (ins Lc_Tensor:$input);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Lc_WhereOp : Lc_Op<"where", [InferTypeOpAdaptor]> {
  let summary = "Select by a boolean condition, with broadcasting (ONNX Where)";
  let arguments = (ins Lc_BoolTensor:$condition, Lc_Tensor:$x, Lc_Tensor:$y);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = [{
    $condition `,` $x `,` $y attr-dict `:` type($condition) `,` type($x) `,`
    type($y) `->` type($output)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Contractions and normalisation
//===----------------------------------------------------------------------===//

def Lc_MatMulOp : Lc_Op<"matmul", [InferTypeOpAdaptor]> {
  let summary = "Batched matrix product with broadcast batch dims (ONNX MatMul)";
  let description = [{
    Both operands have rank >= 2 (the importer reshapes ONNX's 1-D cases);
    `lhs[..., M, K] x rhs[..., K, N] -> [..., M, N]`, batch dims broadcast.
  }];
  let arguments = (ins Lc_FloatTensor:$lhs, Lc_FloatTensor:$rhs);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($output)";
}

def Lc_GemmOp : Lc_Op<"gemm", [InferTypeOpAdaptor]> {
  let summary = "alpha * op(a) op(b) + beta * c (ONNX Gemm)";
  let arguments = (ins Lc_FloatTensor:$a, Lc_FloatTensor:$b,
                       Optional<Lc_FloatTensor>:$c,
                       DefaultValuedAttr<F64Attr, "1.0">:$alpha,
                       DefaultValuedAttr<F64Attr, "1.0">:$beta,
                       DefaultValuedAttr<BoolAttr, "false">:$trans_a,
                       DefaultValuedAttr<BoolAttr, "false">:$trans_b);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$a `,` $b (`,` $c^)? attr-dict `:` functional-type(operands, results)";
}

def Lc_SoftmaxOp : Lc_Op<"softmax", [SameOperandsAndResultType]> {
  let summary = "Softmax along one axis (ONNX Softmax, opset >= 13)";
  let arguments = (ins Lc_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Lc_LogSoftmaxOp : Lc_Op<"log_softmax", [SameOperandsAndResultType]> {
  let summary = "Log-softmax along one axis (ONNX LogSoftmax, opset >= 13)";
  let arguments = (ins Lc_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Lc_LayerNormOp : Lc_Op<"layer_norm", [InferTypeOpAdaptor]> {
  let summary = "Layer normalisation over the dims from `axis` on";
  let arguments = (ins Lc_FloatTensor:$input, Lc_FloatTensor:$scale,
                       Optional<Lc_FloatTensor>:$bias, I64Attr:$axis,
                       DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

class Lc_ReduceOp<string mnemonic, string desc> : Lc_Op<mnemonic, [InferTypeOpAdaptor]> {
  let summary = desc # " over `axes` (sorted, non-negative)";
  let arguments = (ins Lc_NumericTensor:$input, DenseI64ArrayAttr:$axes,
                       DefaultValuedAttr<BoolAttr, "true">:$keepdims);
  let results = (outs Lc_NumericTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
}

def Lc_CumSumOp : Lc_Op<"cumsum", [SameOperandsAndResultType]> {
  let summary = "Running sum along one axis (ONNX CumSum)";
  let arguments = (ins Lc_NumericTensor:$input, I64Attr:$axis,
                       DefaultValuedAttr<BoolAttr, "false">:$exclusive,
                       DefaultValuedAttr<BoolAttr, "false">:$reverse);
  let results = (outs Lc_NumericTensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Lc_ReduceSumOp : Lc_ReduceOp<"reduce_sum", "Sum">;
def Lc_ReduceMeanOp : Lc_ReduceOp<"reduce_mean", "Mean">;
def Lc_ReduceMaxOp : Lc_ReduceOp<"reduce_max", "Maximum">;

//===----------------------------------------------------------------------===//
// Layout and indexing
//===----------------------------------------------------------------------===//

def Lc_TransposeOp : Lc_Op<"transpose", [InferTypeOpAdaptor]> {
  let summary = "Permute dimensions (ONNX Transpose)";
  let arguments = (ins Lc_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
}

def Lc_ReshapeOp : Lc_Op<"reshape"> {
  let summary = "Reinterpret the shape; also ONNX Unsqueeze, Squeeze, Flatten";
  let arguments = (ins Lc_Tensor:$input);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Lc_ExpandOp : Lc_Op<"expand"> {
  let summary = "Broadcast to the result shape (ONNX Expand)";
  let arguments = (ins Lc_Tensor:$input);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Lc_SliceOp : Lc_Op<"slice", [InferTypeOpAdaptor]> {
  let summary = "Strided slice, given per dimension (ONNX Slice, Split)";
  let description = [{
    Result dim `d` has `sizes[d]` elements; element `i` reads input index
    `starts[d] + i * steps[d]`. Steps may be negative, never zero.
  }];
  let arguments = (ins Lc_Tensor:$input, DenseI64ArrayAttr:$starts,
                       DenseI64ArrayAttr:$sizes, DenseI64ArrayAttr:$steps);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
}

def Lc_ConcatOp : Lc_Op<"concat", [InferTypeOpAdaptor]> {
  let summary = "Concatenate along `axis` (ONNX Concat)";
  let arguments = (ins Variadic<Lc_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $output)";
}

def Lc_GatherOp : Lc_Op<"gather", [InferTypeOpAdaptor]> {
  let summary = "Gather slices along `axis` (ONNX Gather; embedding lookups)";
  let arguments = (ins Lc_Tensor:$data, Lc_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$data `,` $indices attr-dict `:` type($data) `,` type($indices) `->` type($output)";
}

def Lc_TriluOp : Lc_Op<"trilu", [SameOperandsAndResultType]> {
  let summary = "Keep the upper or lower triangle of the last two dims (ONNX Trilu)";
  let arguments = (ins Lc_Tensor:$input, DefaultValuedAttr<BoolAttr, "true">:$upper,
                       DefaultValuedAttr<I64Attr, "0">:$k);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Lc_RangeOp : Lc_Op<"range"> {
  let summary = "start + i * delta for every i of the 1-D result (ONNX Range)";
  let arguments = (ins F64Attr:$start, F64Attr:$delta);
  let results = (outs StaticShapeTensorOf<[AnyFloat, I32, I64]>:$output);
  let assemblyFormat = "attr-dict `:` type($output)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// State-space models
//===----------------------------------------------------------------------===//

def Lc_SelectiveScanOp : Lc_Op<"selective_scan", [InferTypeOpAdaptor]> {
  let summary = "Mamba-1 selective scan (custom ONNX op longctx::SelectiveScan)";
  let description = [{
    `h_t = exp(delta_t * A) * h_{t-1} + (delta_t * u_t) B_t`, `y_t = <h_t, C_t>`,
    `h_0 = 0`, with u, delta: [B, S, E], A: [E, N], B, C: [B, S, N] -> y: [B, S, E].
  }];
  let arguments = (ins Lc_FloatTensor:$u, Lc_FloatTensor:$delta, Lc_FloatTensor:$a,
                       Lc_FloatTensor:$b, Lc_FloatTensor:$c);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = [{
    $u `,` $delta `,` $a `,` $b `,` $c attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Fused ops (created by fusion passes)
//===----------------------------------------------------------------------===//

def Lc_RmsNormOp : Lc_Op<"rms_norm", [InferTypeOpAdaptor]> {
  let summary = "RMSNorm over the last dim: x / sqrt(mean(x^2) + epsilon) * scale";
  let arguments = (ins Lc_FloatTensor:$input, Lc_FloatTensor:$scale, F64Attr:$epsilon);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$input `,` $scale attr-dict `:` type($input) `,` type($scale) `->` type($output)";
  let hasVerifier = 1;
}

def Lc_GatedMlpOp : Lc_Op<"gated_mlp", [InferTypeOpAdaptor]> {
  let summary = "SiLU-gated MLP: (silu(x w_gate) * (x w_up)) w_down";
  let description = [{
    x [..., D], w_gate and w_up [D, F], w_down [F, E] -> [..., E]. The kernel
    works on chunks of rows, so the [rows, F] hidden activations never exist
    at once, and its backward recomputes them instead of keeping them.
  }];
  let arguments = (ins Lc_FloatTensor:$input, Lc_FloatTensor:$w_gate, Lc_FloatTensor:$w_up,
                       Lc_FloatTensor:$w_down);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$input `,` $w_gate `,` $w_up `,` $w_down attr-dict `:` functional-type(operands, results)";
}

def Lc_AttentionOp : Lc_Op<"attention", [InferTypeOpAdaptor]> {
  let summary = "Scaled dot-product attention, FlashAttention-2 style (O(S) memory)";
  let description = [{
    `output = softmax(scale * q k^T [+ causal mask]) v` with q [B, H, S, D],
    k [B, Hk, T, D], v [B, Hk, T, Dv]; H is a multiple of Hk (grouped-query
    attention: query head h reads kv head h / (H / Hk)). Causal: query i sees
    key j iff j <= i + T - S. `lse` [B, H, S] is each row's log-sum-exp of
    the scaled scores, kept for the backward, which recomputes the scores
    block by block instead of storing the S x T probabilities.
  }];
  let arguments = (ins Lc_FloatTensor:$q, Lc_FloatTensor:$k, Lc_FloatTensor:$v, F64Attr:$scale,
                       BoolAttr:$causal);
  let results = (outs Lc_FloatTensor:$output, Lc_FloatTensor:$lse);
  let assemblyFormat = "$q `,` $k `,` $v attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Loss
//===----------------------------------------------------------------------===//

def Lc_CrossEntropyOp : Lc_Op<"cross_entropy", [InferTypeOpAdaptor]> {
  let summary = "Mean cross-entropy of logits against integer targets";
  let description = [{
    `logits` is [..., V]; with `shift = 1` (next-token loss) logits [B, S, V]
    are scored against `targets` [B, S] shifted by one: position (b, s), s <
    S-1, predicts targets[b, s+1]. With `shift = 0` position p predicts
    targets[p]. Positions whose target is `ignore_index` do not count; the
    result is the mean over the counted positions (0 when none), or with
    `reduction = 1` their sum (a chunk of lc-mini-sequence's LM head: the
    global count divides the sum of the chunks).
  }];
  let arguments = (ins Lc_FloatTensor:$logits, Lc_IndexTensor:$targets,
                       DefaultValuedAttr<I64Attr, "1">:$shift,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
                       DefaultValuedAttr<I64Attr, "0">:$reduction);
  let results = (outs Lc_FloatTensor:$loss);
  let assemblyFormat = "$logits `,` $targets attr-dict `:` type($logits) `,` type($targets) `->` type($loss)";
}

//===----------------------------------------------------------------------===//
// Backward-only ops
//===----------------------------------------------------------------------===//

def Lc_SliceScatterOp : Lc_BackwardOp<"slice_scatter"> {
  let summary = "Adjoint of slice: zeros with the strided region set to the input";
  let arguments = (ins Lc_Tensor:$input, DenseI64ArrayAttr:$starts, DenseI64ArrayAttr:$steps);
  let results = (outs Lc_Tensor:$output);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($output)";
  let hasVerifier = 1;
}

def Lc_ScatterAddOp : Lc_BackwardOp<"scatter_add"> {
  let summary = "Adjoint of gather: rows of `grad` added at `indices` along `axis`";
  let arguments = (ins Lc_FloatTensor:$grad, Lc_IndexTensor:$indices, I64Attr:$axis);
  let results = (outs Lc_FloatTensor:$output);
  let assemblyFormat = "$grad `,` $indices attr-dict `:` type($grad) `,` type($indices) `->` type($output)";
  let hasVerifier = 1;
}

def Lc_LayerNormGradOp : Lc_BackwardOp<"layer_norm_grad", [InferTypeOpAdaptor]> {
  let summary = "Adjoint of layer_norm: (dx, dscale, dbias)";
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$input, Lc_FloatTensor:$scale,
                       I64Attr:$axis, DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Lc_FloatTensor:$dx, Lc_FloatTensor:$dscale, Lc_FloatTensor:$dbias);
  let assemblyFormat = "$dy `,` $input `,` $scale attr-dict `:` functional-type(operands, results)";
}

def Lc_SelectiveScanStateOp : Lc_Op<"selective_scan_state", [InferTypeOpAdaptor]> {
  let summary = "selective_scan from a given initial state, also returning the final state";
  let description = [{
    As `lc.selective_scan`, with `h_0 = h0` ([B, E, N]) instead of zeros;
    `final_state` is `h_S`. One time shard of a longer scan: shards chained by
    their states equal the whole scan (adjoint sharding's building block).

    `truncate = T` changes only the gradient: each output cotangent dy_t
    reaches back to the states h_i with t - i < T (truncated adjoint
    sharding), and the cotangent carried for the state is the adjoint window
    [B, T, E, N] (see `selective_scan_state_grad`).
  }];
  let arguments = (ins Lc_FloatTensor:$u, Lc_FloatTensor:$delta, Lc_FloatTensor:$a,
                       Lc_FloatTensor:$b, Lc_FloatTensor:$c, Lc_FloatTensor:$h0,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntMinValue<1>]>>:$truncate);
  let results = (outs Lc_FloatTensor:$output, Lc_FloatTensor:$final_state);
  let assemblyFormat = [{
    $u `,` $delta `,` $a `,` $b `,` $c `,` $h0 attr-dict `:` functional-type(operands, results)
  }];
}
def Lc_SelectiveScanStateGradOp : Lc_BackwardOp<"selective_scan_state_grad", [InferTypeOpAdaptor]> {
  let summary = "Adjoint of selective_scan_state: the reverse scan from the final state's cotangent";
  let description = [{
    Without `truncate`, `dfinal_state` and `dh0` are the cotangents of the
    final and initial states ([B, E, N]). With `truncate = T` they are
    adjoint windows [B, T, E, N]: entry k holds what the k + 1 steps after
    the shard send back to its last (resp. before its first) state, which is
    what a truncated backward needs from the shards after it. With
    `with_output` the op also returns the scan's output, recomputed from the
    states it recomputes anyway.
  }];
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$dfinal_state, Lc_FloatTensor:$u,
                       Lc_FloatTensor:$delta, Lc_FloatTensor:$a, Lc_FloatTensor:$b,
                       Lc_FloatTensor:$c, Lc_FloatTensor:$h0,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntMinValue<1>]>>:$truncate,
                       UnitAttr:$with_output);
  let results = (outs Lc_FloatTensor:$du, Lc_FloatTensor:$ddelta, Lc_FloatTensor:$da,
                      Lc_FloatTensor:$db, Lc_FloatTensor:$dc, Lc_FloatTensor:$dh0,
                      Optional<Lc_FloatTensor>:$output);
  let assemblyFormat = [{
    $dy `,` $dfinal_state `,` $u `,` $delta `,` $a `,` $b `,` $c `,` $h0 attr-dict `:` functional-type(operands, results)
  }];
}
def Lc_SelectiveScanCarryOp : Lc_BackwardOp<"selective_scan_carry", [InferTypeOpAdaptor]> {
  let summary = "A time shard's part of the state adjoint passed to the shard before it";
  let description = [{
    The cotangent `selective_scan_state_grad` would return for the shard's
    initial state if the final state's cotangent were zero (`carry`), and
    the product of the shard's decays `decay = exp(A * sum_t delta_t)`
    ([B, E, N] each). The true cotangent is `carry + decay * dfinal_state`:
    linear in the carried value, so every shard can compute its part at
    once and one short sequential pass (`selective_scan_carry_combine`)
    chains them (Mamba-2's state passing, in reverse). Needs only dy, delta,
    A and C: no forward state.
  }];
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$delta, Lc_FloatTensor:$a,
                       Lc_FloatTensor:$c);
  let results = (outs Lc_FloatTensor:$carry, Lc_FloatTensor:$decay);
  let assemblyFormat = [{
    $dy `,` $delta `,` $a `,` $c attr-dict `:` functional-type(operands, results)
  }];
}
def Lc_SelectiveScanCarryCombineOp
    : Lc_BackwardOp<"selective_scan_carry_combine", [InferTypeOpAdaptor]> {
  let summary = "Chains the shards' carries into each shard's final-state cotangent";
  let description = [{
    `carries` and `decays` ([K * B, E, N], shard k at rows [k B, (k+1) B))
    are the shards' `selective_scan_carry` results, `dfinal` ([B, E, N]) the
    cotangent of the last shard's final state. Returns `dlast` (shaped as
    `carries`: row block k is the cotangent of shard k's final state,
    `dlast[K-1] = dfinal`, `dlast[k-1] = carries[k] + decays[k] * dlast[k]`)
    and `dinit`, the cotangent of the first shard's initial state.
  }];
  let arguments = (ins Lc_FloatTensor:$carries, Lc_FloatTensor:$decays, Lc_FloatTensor:$dfinal);
  let results = (outs Lc_FloatTensor:$dlast, Lc_FloatTensor:$dinit);
  let assemblyFormat = [{
    $carries `,` $decays `,` $dfinal attr-dict `:` functional-type(operands, results)
  }];
}
def Lc_SelectiveScanGradOp : Lc_BackwardOp<"selective_scan_grad", [InferTypeOpAdaptor]> {
  let summary = "Adjoint of selective_scan by the reverse scan of the state adjoint";
  let description = [{
    With `with_output` the op also returns the scan's output, recomputed from
    the states it recomputes anyway.
  }];
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$u, Lc_FloatTensor:$delta,
                       Lc_FloatTensor:$a, Lc_FloatTensor:$b, Lc_FloatTensor:$c,
                       UnitAttr:$with_output);
  let results = (outs Lc_FloatTensor:$du, Lc_FloatTensor:$ddelta, Lc_FloatTensor:$da,
                      Lc_FloatTensor:$db, Lc_FloatTensor:$dc, Optional<Lc_FloatTensor>:$output);
  let assemblyFormat = [{
    $dy `,` $u `,` $delta `,` $a `,` $b `,` $c attr-dict `:` functional-type(operands, results)
  }];
}

def Lc_RmsNormGradOp : Lc_BackwardOp<"rms_norm_grad", [InferTypeOpAdaptor]> {
  let summary = "Adjoint of rms_norm: (dx, dscale)";
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$input, Lc_FloatTensor:$scale,
                       F64Attr:$epsilon);
  let results = (outs Lc_FloatTensor:$dx, Lc_FloatTensor:$dscale);
  let assemblyFormat = "$dy `,` $input `,` $scale attr-dict `:` functional-type(operands, results)";
}

def Lc_GatedMlpGradOp : Lc_BackwardOp<"gated_mlp_grad", [InferTypeOpAdaptor]> {
  let summary = "Adjoint of gated_mlp: (dx, dw_gate, dw_up, dw_down), hidden recomputed";
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$input, Lc_FloatTensor:$w_gate,
                       Lc_FloatTensor:$w_up, Lc_FloatTensor:$w_down);
  let results = (outs Lc_FloatTensor:$dx, Lc_FloatTensor:$dw_gate, Lc_FloatTensor:$dw_up,
                      Lc_FloatTensor:$dw_down);
  let assemblyFormat = [{
    $dy `,` $input `,` $w_gate `,` $w_up `,` $w_down attr-dict `:` functional-type(operands, results)
  }];
}

def Lc_AttentionGradOp : Lc_BackwardOp<"attention_grad", [InferTypeOpAdaptor]> {
  let summary = "FlashAttention-2 backward: (dq, dk, dv), scores recomputed per block";
  let arguments = (ins Lc_FloatTensor:$dy, Lc_FloatTensor:$q, Lc_FloatTensor:$k,
                       Lc_FloatTensor:$v, Lc_FloatTensor:$output, Lc_FloatTensor:$lse,
                       F64Attr:$scale, BoolAttr:$causal);
  let results = (outs Lc_FloatTensor:$dq, Lc_FloatTensor:$dk, Lc_FloatTensor:$dv);
  let assemblyFormat = [{
    $dy `,` $q `,` $k `,` $v `,` $output `,` $lse attr-dict `:` functional-type(operands, results)
  }];
}

def Lc_CrossEntropyAndGradOp : Lc_BackwardOp<"cross_entropy_and_grad", [InferTypeOpAdaptor]> {
  let summary = "Summed token cross-entropy and its gradient in one pass over the logits";
  let description = [{
    logits [rows, V] scored against targets [rows] (no shift; rows whose
    target is `ignore_index` do not count): `loss` = the sum over counted
    rows of logsumexp(row) - row[target], `dlogits` = its gradient
    (softmax - onehot on counted rows, 0 elsewhere). The chunk body of
    lc-mini-sequence's LM head: the gradient is made while the logits exist,
    so they are never recomputed.
  }];
  let arguments = (ins Lc_FloatTensor:$logits, Lc_IndexTensor:$targets,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs Lc_FloatTensor:$loss, Lc_FloatTensor:$dlogits);
  let assemblyFormat = [{
    $logits `,` $targets attr-dict `:` functional-type(operands, results)
  }];
}
def Lc_CrossEntropyGradOp : Lc_BackwardOp<"cross_entropy_grad", [InferTypeOpAdaptor]> {
  let summary = "Adjoint of cross_entropy: (softmax - onehot) * dloss / count, row by row";
  let arguments = (ins Lc_FloatTensor:$logits, Lc_IndexTensor:$targets, Lc_FloatTensor:$dloss,
                       DefaultValuedAttr<I64Attr, "1">:$shift,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
                       DefaultValuedAttr<I64Attr, "0">:$reduction);
  let results = (outs Lc_FloatTensor:$dlogits);
  let assemblyFormat = [{
    $logits `,` $targets `,` $dloss attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Optimizer updates: the only ops that write state that outlives a step.
//===----------------------------------------------------------------------===//

class Lc_UpdateOp<string mnemonic> : Op<Lc_Dialect, mnemonic, [MemoryEffects<[MemWrite]>]> {
  let hasVerifier = 1;
}

def Lc_AdamWUpdateOp : Lc_UpdateOp<"adamw_update"> {
  let summary = "AdamW step of one parameter, in place (PyTorch semantics)";
  let description = [{
    Updates parameter `param` and its first and second moments (optimizer
    state the runtime keeps beside the weights) from `grad * scale` (`scale`
    implements global-norm clipping), at learning rate `lr` and step `step`
    (1-based, for bias correction). Weight decay is decoupled.
  }];
  let arguments = (ins StrAttr:$param, Lc_FloatTensor:$grad, Lc_FloatTensor:$lr,
                       Lc_FloatTensor:$step, Lc_FloatTensor:$scale,
                       DefaultValuedAttr<F64Attr, "0.9">:$beta1,
                       DefaultValuedAttr<F64Attr, "0.999">:$beta2,
                       DefaultValuedAttr<F64Attr, "1e-8">:$epsilon,
                       DefaultValuedAttr<F64Attr, "0.01">:$weight_decay);
  let assemblyFormat = [{
    $param `,` $grad `,` $lr `,` $step `,` $scale attr-dict `:` type($grad) `,` type($lr) `,`
    type($step) `,` type($scale)
  }];
}

def Lc_SgdUpdateOp : Lc_UpdateOp<"sgd_update"> {
  let summary = "SGD step of one parameter with optional momentum, in place (PyTorch semantics)";
  let arguments = (ins StrAttr:$param, Lc_FloatTensor:$grad, Lc_FloatTensor:$lr,
                       Lc_FloatTensor:$scale,
                       DefaultValuedAttr<F64Attr, "0.0">:$momentum,
                       DefaultValuedAttr<F64Attr, "0.0">:$weight_decay,
                       DefaultValuedAttr<BoolAttr, "false">:$nesterov);
  let assemblyFormat = [{
    $param `,` $grad `,` $lr `,` $scale attr-dict `:` type($grad) `,` type($lr) `,` type($scale)
  }];
}


//===----------------------------------------------------------------------===//
// Structure: mini-sequences
//===----------------------------------------------------------------------===//

def Lc_MiniSequenceOp : Op<Lc_Dialect, "mini_sequence", [
    RecursiveMemoryEffects, SingleBlock,
    DeclareOpInterfaceMethods<Lc_GradientOpInterface>]> {
  let summary = "Run a computation over `chunks` slices of its rows, optionally carrying state";
  let description = [{
    The Mini-Sequence Transformer's loop (Luo et al. 2024) and adjoint
    sharding's time shards, as one op. Inputs marked in `split` are cut along
    dim 0 into `chunks` consecutive slices of ceil(rows / chunks) rows (the
    last may be shorter; every split input must give the same number of
    slices); the other inputs (weights) reach every chunk whole. The body runs
    once per chunk on the block arguments (typed for a full chunk) and yields
    one value per chunk result: results marked in `sum` are the sum of the
    chunks' values, the others the chunks' values concatenated along dim 0.
    Only one chunk's intermediates are live at a time.

    With `carried = c`, the last c inputs are initial values of state carried
    from chunk to chunk (in chunk order, or last to first with `reverse`): the
    body gets the current values as its last c arguments and yields the next
    ones after its chunk results. The op then also returns the final values
    and, per carried value, the history of the values each chunk started
    from, concatenated along dim 0 in chunk order (the states at shard
    boundaries, which a backward reads instead of rescanning).

    Its gradient is a second mini_sequence (a reverse one, carrying the
    state's cotangent, for a carried loop) that recomputes each chunk's
    forward and runs its backward with the body ops' own rules. When the body
    already computes the gradient of result 0 (a scalar loss) for upstream 1,
    `gradients` says, per input, which result holds it (-1: none); the op's
    gradient is then those results scaled by the upstream cotangent.
    `lc-lower-mini-sequence` unrolls it into static ops before planning.
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs, I64Attr:$chunks,
                       DenseBoolArrayAttr:$split, DenseBoolArrayAttr:$sum,
                       OptionalAttr<DenseI64ArrayAttr>:$gradients,
                       DefaultValuedAttr<I64Attr, "0">:$carried, UnitAttr:$reverse);
  let results = (outs Variadic<AnyRankedTensor>:$outputs);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $inputs `)` attr-dict `:` functional-type($inputs, $outputs) $body
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Rows of input `i` per (full) chunk; its own rows for a whole input.
    int64_t getChunkRows(unsigned i);
    /// The chunks that run: ceil(rows / chunk rows) of the split inputs.
    int64_t getNumChunks();
    /// Inputs before the carried ones; results before the final values.
    unsigned getNumChunkInputs() { return getInputs().size() - getCarried(); }
    unsigned getNumChunkResults() { return getOutputs().size() - 2 * getCarried(); }
  }];
}

def Lc_FusedElementwiseOp : Op<Lc_Dialect, "fused_elementwise", [
    Pure, SingleBlock, IsolatedFromAbove]> {
  let summary = "A chain of elementwise ops run as one kernel";
  let description = [{
    The body, elementwise ops on the block arguments (one per input), runs
    as one pass over the elements: intermediates never reach memory. Every
    input has the result's shape or is a scalar (rank 0); all are floats of
    the result's element type. `lc-fuse-elementwise` builds it late in the
    pipeline (no gradient rule); the CPU kernel evaluates the body tile by
    tile with the ops' own kernels, so results equal the unfused ops'
    bit for bit, and a CUDA backend can generate one kernel from the body.
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$inputs);
  let results = (outs AnyRankedTensor:$output);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $inputs `)` attr-dict `:` functional-type($inputs, $output) $body
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// Whether `op` may be in the body: an elementwise float op.
    static bool canFuse(::mlir::Operation *op);
    /// The body as the CPU kernel's `program` attribute: one instruction per
    /// body op, "name a b;" with operand numbers counting the inputs first
    /// and then each instruction's result; the last instruction's result is
    /// the output.
    std::string getProgram();
  }];
}

def Lc_YieldOp : Op<Lc_Dialect, "yield", [Pure, Terminator,
    ParentOneOf<["MiniSequenceOp", "FusedElementwiseOp"]>]> {
  let summary = "A mini-sequence chunk's values, or a fused body's result";
  let arguments = (ins Variadic<AnyRankedTensor>:$values);
  let assemblyFormat = "$values attr-dict `:` type($values)";
}

#endif // LC_OPS_TD
