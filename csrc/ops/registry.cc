#include "ops.h"

namespace intinfer {

std::unique_ptr<Op> create_op(const OpContext& ctx) {
  // Packed sub-byte constants are read as the weights of CONV2D and FULLY_CONNECTED and as
  // GATHER's table, block-sparse ones as the weights of CONV2D and FULLY_CONNECTED (the reader
  // has validated them). Every other use is refused here, in one place.
  const OpType type = ctx.desc().type;
  for (size_t i = 0; i < ctx.desc().inputs.size(); ++i) {
    const TensorDesc& t = ctx.input(i);
    const bool weights = i == 1 && (type == OpType::kConv2D || type == OpType::kFullyConnected);
    const bool reads_packed = weights || (i == 0 && type == OpType::kGather);
    const bool block_sparse = t.encoding == Encoding::kBlockSparse || t.encoding == Encoding::kBlockBitmap;
    if (t.encoding != Encoding::kDense && !(t.encoding == Encoding::kPacked && reads_packed) &&
        !(block_sparse && weights))
      ctx.fail("input ", i, " '", t.name, "' is ", dtype_name(t.dtype), " in the ", encoding_schema(t.encoding).name,
               " encoding, which this op does not read");
  }
  switch (ctx.desc().type) {
    // BEGIN GENERATED cases (scripts/gen_schema.py)
    case OpType::kQuantize: return make_quantize(ctx);
    case OpType::kDequantize: return make_dequantize(ctx);
    case OpType::kConv2D: return make_conv2d(ctx);
    case OpType::kFullyConnected: return make_fully_connected(ctx);
    case OpType::kAdd: return make_add(ctx);
    case OpType::kConcat: return make_concat(ctx);
    case OpType::kAvgPool: return make_avg_pool(ctx);
    case OpType::kMaxPool: return make_max_pool(ctx);
    case OpType::kGlobalAvgPool: return make_global_avg_pool(ctx);
    case OpType::kReshape: return make_reshape(ctx);
    case OpType::kLut: return make_lut(ctx);
    case OpType::kClamp: return make_clamp(ctx);
    case OpType::kMul: return make_mul(ctx);
    case OpType::kTranspose: return make_transpose(ctx);
    case OpType::kGather: return make_gather(ctx);
    case OpType::kLayerNorm: return make_layer_norm(ctx);
    case OpType::kSoftmax: return make_softmax(ctx);
    case OpType::kMatMul: return make_matmul(ctx);
    case OpType::kMaskedMean: return make_masked_mean(ctx);
    case OpType::kSlice: return make_slice(ctx);
    case OpType::kApplyMask: return make_apply_mask(ctx);
    // END GENERATED cases
  }
  ctx.fail("has no implementation");
}

}  // namespace intinfer
