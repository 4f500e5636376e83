// The kernel tables of tables.h. A row names its kernel, the CPU features it requires, what it
// accepts and its tile; rows are in order of preference and each table ends with its reference.
// Rows of other architectures are compiled out: a build holds the rows it can run somewhere.
#include "tables.h"

#include <stdexcept>
#include <string>

#include "ref/kernels.h"
#if defined(INTINFER_HAVE_AVX2)
#include "x86/x86_kernels.h"
#endif
#if defined(INTINFER_HAVE_NEON)
#include "arm/arm_kernels.h"
#endif

namespace intinfer {
namespace {

template <int kBits>
bool dense_bits(const WeightFormat& f, size_t) {
  return f.bits == kBits && f.layout == WeightFormat::Layout::kDense;
}
constexpr auto dense_s8 = dense_bits<8>;

// What the reference rows read: int8, packed int4 / int2 (codes.h) and, for GEMM, int16 and
// block-sparse int8 (sparse.h).
bool dense_any(const WeightFormat& f, size_t) {
  return (f.bits == 8 || f.bits == 4 || f.bits == 2) && f.layout == WeightFormat::Layout::kDense;
}
bool sparse_s8(const WeightFormat& f, size_t) { return f.bits == 8 && f.layout == WeightFormat::Layout::kBlockSparse; }
// Block-sparse int8 codes within +-127: two products with x - 128 sum exactly in int16.
bool sparse_s8_pairs(const WeightFormat& f, size_t depth) { return sparse_s8(f, depth) && pairs_fit_int16(f); }
bool gemm_any(const WeightFormat& f, size_t depth) {
  return dense_any(f, depth) || (f.bits == 16 && f.layout == WeightFormat::Layout::kDense) || sparse_s8(f, depth);
}

// int16 codes multiply exactly too (vpmaddwd, SMLAL on int16): MATMUL's per-call operand.
bool dense_s8_or_s16(const WeightFormat& f, size_t) {
  return (f.bits == 8 || f.bits == 16) && f.layout == WeightFormat::Layout::kDense;
}

template <size_t kMaxTaps>
bool dense_s8_taps(const WeightFormat& f, size_t taps) {
  return dense_s8(f, taps) && taps <= kMaxTaps;
}

// int8 codes within +-127: two products with x - 128 sum exactly in int16 (weight_format.h).
bool dense_s8_pairs(const WeightFormat& f, size_t depth) { return dense_s8(f, depth) && pairs_fit_int16(f); }

template <size_t kMaxTaps>
bool dense_s8_pairs_taps(const WeightFormat& f, size_t taps) {
  return dense_s8_pairs(f, taps) && taps <= kMaxTaps;
}

// The reference rows read the validated weights in place (TileLayout nr = 0), in every format
// an op hands their table: a format is read by the engine only once it has a reference kernel.
void gemm__ref(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
               size_t y_stride, size_t rows, size_t, size_t, void*) {
  const GemmParams p{1, w.n, w.k, out, w.multipliers};
  const auto* codes16 = static_cast<const int16_t*>(w.weights);
  const SparseCodes sparse{w.group_start, w.group_k, static_cast<const int8_t*>(w.weights)};
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* xr = x + r * x_stride;
    if (w.output_scales != nullptr) {
      float* yr = static_cast<float*>(y) + r * y_stride;
      if (w.group_start != nullptr)
        gemm_u8sparse_f32__ref(p, w.output_scales, sparse, xr, w.bias, yr, 0, 1);
      else if (w.code_bits == 16)
        gemm_u8s16_f32__ref(p, w.output_scales, xr, codes16, w.bias, yr, 0, 1);
      else
        gemm_u8sub_f32__ref(p, w.code_bits, w.output_scales, xr, w.weights, w.bias, yr, 0, 1);
    } else {
      uint8_t* yr = static_cast<uint8_t*>(y) + r * y_stride;
      if (w.group_start != nullptr)
        gemm_u8sparse__ref(p, sparse, xr, w.bias, yr, 0, 1);
      else if (w.code_bits == 16)
        gemm_u8s16__ref(p, xr, codes16, w.bias, yr, 0, 1);
      else
        gemm_u8sub__ref(p, w.code_bits, xr, w.weights, w.bias, yr, 0, 1);
    }
  }
}

void dwconv__ref(const PackedView& w, const ConvParams& p, const uint8_t* x, const uint8_t*, uint8_t* y,
                 size_t row_begin, size_t row_end) {
  conv2d_u8sub__ref(p, w.code_bits, x, w.weights, w.bias, y, row_begin, row_end);
}

void layer_norm_u8_ref(const LayerNormParams& p, const LayerNormView&, const uint8_t* x, void* y, size_t b,
                       size_t e) {
  layer_norm_u8__ref(p, x, y, b, e);
}
void layer_norm_wide_ref(const LayerNormParams& p, const LayerNormView&, const int32_t* x, void* y, size_t b,
                         size_t e) {
  layer_norm_wide__ref(p, x, y, b, e);
}
void softmax_ref(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y, size_t b, size_t e,
                 int32_t*) {
  softmax_u8__ref(p, x, mask, y, b, e);
}

constexpr TileLayout kInPlace{};

// The GEMM of a wide input: x holds int16 rows (x_stride in bytes).
void gemm_s16__ref(const PackedView& w, const OutputStage& out, const uint8_t* x, size_t x_stride, void* y,
                   size_t y_stride, size_t rows, size_t, size_t, void*) {
  const GemmParams p{1, w.n, w.k, out, w.multipliers};
  const auto* codes = static_cast<const int8_t*>(w.weights);
  for (size_t r = 0; r < rows; ++r) {
    const auto* xr = reinterpret_cast<const int16_t*>(x + r * x_stride);
    if (w.output_scales != nullptr)
      gemm_s16s8_f32__ref(p, w.output_scales, xr, codes, w.bias, static_cast<float*>(y) + r * y_stride, 0, 1);
    else
      gemm_s16s8__ref(p, xr, codes, w.bias, static_cast<uint8_t*>(y) + r * y_stride, 0, 1);
  }
}

#if defined(INTINFER_HAVE_AVX2)
// The block-sparse rows' crossovers against each path's dense int8 row (tables.h): the largest
// density of bench/sparse_gemm.py's grid (5, 10, 20, 30, 50%) at which the sparse row was faster on
// every shape of its kind, 0 where it never was. AVX2: an AVX2-only Zen 3 (the exporter's
// SPARSE_MAX_DENSITY came from the same runs); the VNNI paths: an AMD EPYC (Zen 5) with both,
// 2026-12-07, docs/pruning.md.
constexpr SparseCrossover kCrossoverAvx2{0.1f, 0.25f, 0.4f};
constexpr SparseCrossover kCrossoverAvxVnni{0.05f, 0.0f, 0.1f};
constexpr SparseCrossover kCrossoverAvx512Vnni{0.0f, 0.0f, 0.05f};
#endif

const GemmRow kGemmRows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"gemm_u8s8_8x16c4__avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, dense_s8, {8, 16, 4, 4, 1, 0, nullptr},
     gemm_u8s8_8x16c4__avx512vnni, kCrossoverAvx512Vnni},
    {"gemm_u8s4_8x16c4__avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, dense_bits<4>,
     {8, 16, 4, 4, 1, 128, nullptr, 4, 8}, gemm_u8s4_8x16c4__avx512vnni},
    {"gemm_u8s2_8x16c4__avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, dense_bits<2>,
     {8, 16, 4, 4, 1, 128, nullptr, 2, 1}, gemm_u8s2_8x16c4__avx512vnni},
    {"gemm_u8bs8_16x1c4__avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, sparse_s8, {16, 16, 4, 4, 1, 0, nullptr},
     gemm_u8bs8_16x1c4__avx512vnni},
    {"gemm_u8s8_4x16c4__avxvnni", kFeatureAvx2 | kFeatureAvxVnni, dense_s8, {4, 16, 4, 4, 1, 0, nullptr},
     gemm_u8s8_4x16c4__avxvnni, kCrossoverAvxVnni},
    {"gemm_u8s4_4x16c4__avxvnni", kFeatureAvx2 | kFeatureAvxVnni, dense_bits<4>, {4, 16, 4, 4, 1, 128, nullptr, 4, 8},
     gemm_u8s4_4x16c4__avxvnni},
    {"gemm_u8s2_4x16c4__avxvnni", kFeatureAvx2 | kFeatureAvxVnni, dense_bits<2>, {4, 16, 4, 4, 1, 128, nullptr, 2, 1},
     gemm_u8s2_4x16c4__avxvnni},
    {"gemm_u8s8_4x16c4__avx2", kFeatureAvx2, dense_s8_pairs, {4, 16, 4, 4, 1, 128, nullptr}, gemm_u8s8_4x16c4__avx2,
     kCrossoverAvx2},
    {"gemm_u8s8_4x16c2__avx2", kFeatureAvx2, dense_s8_or_s16, {4, 16, 2, 2, 2, 0, nullptr}, gemm_u8s8_4x16c2__avx2},
    {"gemm_u8bs8_8x1c4__avx2", kFeatureAvx2, sparse_s8_pairs, {8, 16, 4, 4, 1, 128, nullptr},
     gemm_u8bs8_8x1c4__avx2},
    {"gemm_u8s4_4x16c4__avx2", kFeatureAvx2, dense_bits<4>, {4, 16, 4, 4, 1, 128, nullptr, 4, 8},
     gemm_u8s4_4x16c4__avx2},
    {"gemm_u8s2_4x16c4__avx2", kFeatureAvx2, dense_bits<2>, {4, 16, 4, 4, 1, 0, nullptr, 2}, gemm_u8s2_4x16c4__avx2},
#endif
#if defined(INTINFER_HAVE_NEONI8MM)
    {"gemm_u8s8_4x16c8__neoni8mm", kFeatureNeon | kFeatureNeonI8mm, dense_s8, {4, 16, 8, 8, 1, 0, nullptr},
     gemm_u8s8_4x16c8__neoni8mm},
#endif
#if defined(INTINFER_HAVE_NEONDOT)
    {"gemm_u8s8_4x16c4__neondot", kFeatureNeon | kFeatureNeonDot, dense_s8, {4, 16, 4, 8, 1, 128, nullptr},
     gemm_u8s8_4x16c4__neondot},
    {"gemm_u8s4_4x16c4__neondot", kFeatureNeon | kFeatureNeonDot, dense_bits<4>, {4, 16, 4, 16, 1, 128, nullptr, 4},
     gemm_u8s4_4x16c4__neondot},
    {"gemm_u8s2_4x16c4__neondot", kFeatureNeon | kFeatureNeonDot, dense_bits<2>, {4, 16, 4, 16, 1, 128, nullptr, 2},
     gemm_u8s2_4x16c4__neondot},
    {"gemm_u8bs8_8x1c4__neondot", kFeatureNeon | kFeatureNeonDot, sparse_s8, {8, 16, 4, 4, 1, 128, nullptr},
     gemm_u8bs8_8x1c4__neondot},
#endif
#if defined(INTINFER_HAVE_NEON) && defined(__aarch64__)
    {"gemm_u8s8_4x8c16__neon", kFeatureNeon, dense_s8_pairs, {4, 8, 16, 16, 1, 128, nullptr},
     gemm_u8s8_4x8c16__neon},
    {"gemm_u8s4_4x8c16__neon", kFeatureNeon, dense_bits<4>, {4, 8, 16, 16, 1, 128, nullptr, 4},
     gemm_u8s4_4x8c16__neon},
    {"gemm_u8s2_4x8c16__neon", kFeatureNeon, dense_bits<2>, {4, 8, 16, 16, 1, 128, nullptr, 2},
     gemm_u8s2_4x8c16__neon},
#endif
#if defined(INTINFER_HAVE_NEON)
    {"gemm_u8s8_4x8__neon", kFeatureNeon, dense_s8_or_s16, {4, 8, 1, 8, 2, 0, nullptr}, gemm_u8s8_4x8__neon},
    {"gemm_u8bs8_8x1c4__neon", kFeatureNeon, sparse_s8_pairs, {8, 16, 4, 4, 1, 128, nullptr},
     gemm_u8bs8_8x1c4__neon},
#endif
    {"gemm_u8s8__ref", 0, gemm_any, kInPlace, gemm__ref},
};

const GemmRow kGemmS16Rows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"gemm_s16s8_4x16c2__avx2", kFeatureAvx2, dense_s8, {4, 16, 2, 2, 2, 0, nullptr}, gemm_s16s8_4x16c2__avx2},
#endif
#if defined(INTINFER_HAVE_NEON)
    {"gemm_s16s8_4x8__neon", kFeatureNeon, dense_s8, {4, 8, 1, 8, 2, 0, nullptr}, gemm_s16s8_4x8__neon},
#endif
    {"gemm_s16s8__ref", 0, dense_s8, kInPlace, gemm_s16__ref},
};

const DwconvRow kDwconvRows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"dwconv_u8s8_32c2__avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, dense_s8_taps<kDwconvAvx512MaxTaps>,
     {1, 32, 2, 2, 2, 0, kDwconvAvx512LaneOrder}, dwconv_u8s8_32c2__avx512vnni},
    {"dwconv_u8s8_16c2__avx2", kFeatureAvx2, dense_s8_taps<kDwconvAvx2MaxTaps>,
     {1, 16, 2, 2, 2, 0, kDwconvAvx2LaneOrder}, dwconv_u8s8_16c2__avx2},
#endif
#if defined(INTINFER_HAVE_NEON)
    {"dwconv_u8s8_16c1__neon", kFeatureNeon, dense_s8_pairs_taps<kDwconvNeonMaxTaps>,
     {1, 16, 1, 1, 1, 128, nullptr}, dwconv_u8s8_16c1__neon},
#endif
    {"conv2d_u8s8__ref", 0, dense_any, kInPlace, dwconv__ref},
};

const ElementwiseRow kElementwiseRows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, add_u8__avx512vnni, mul_u8__avx2, quantize_f32_u8__avx2,
     dequantize_u8_f32__avx2, lut_u8__avx2, add_wide__avx512vnni, wide_from_f32__avx2},
    {"avx2", kFeatureAvx2, add_u8__avx2, mul_u8__avx2, quantize_f32_u8__avx2, dequantize_u8_f32__avx2, lut_u8__avx2,
     add_wide__avx2, wide_from_f32__avx2},
#endif
#if defined(INTINFER_HAVE_NEON) && defined(__aarch64__)
    {"neon", kFeatureNeon, add_u8__neon, mul_u8__neon, quantize_f32_u8__neon, dequantize_u8_f32__neon, lut_u8__neon,
     add_wide__neon, wide_from_f32__neon},
#elif defined(INTINFER_HAVE_NEON)
    {"neon", kFeatureNeon, add_u8__neon, mul_u8__neon, quantize_f32_u8__ref, dequantize_u8_f32__ref, lut_u8__ref,
     add_wide__neon, wide_from_f32__ref},
#endif
    {"ref", 0, add_u8__ref, mul_u8__ref, quantize_f32_u8__ref, dequantize_u8_f32__ref, lut_u8__ref, add_wide__ref,
     wide_from_f32__ref},
};

const PoolRow kPoolRows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"avx2", kFeatureAvx2, avg_pool_u8__avx2, max_pool_u8__avx2},
#endif
#if defined(INTINFER_HAVE_NEON)
    {"neon", kFeatureNeon, avg_pool_u8__neon, max_pool_u8__neon},
#endif
    {"ref", 0, avg_pool_u8__ref, max_pool_u8__ref},
};

const TransformerRow kTransformerRows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, 16, layer_norm_u8__avx512vnni, layer_norm_wide__avx512vnni,
     softmax_u8__avx512vnni, gather_rows_wide__avx2},
    {"avx2", kFeatureAvx2, 8, layer_norm_u8__avx2, layer_norm_wide__avx2, softmax_u8__avx2, gather_rows_wide__avx2},
#endif
#if defined(INTINFER_HAVE_NEON)
    {"neon", kFeatureNeon, 4, layer_norm_u8__neon, layer_norm_wide__neon, softmax_u8__neon, gather_rows_wide__neon},
#endif
    {"ref", 0, 1, layer_norm_u8_ref, layer_norm_wide_ref, softmax_ref, gather_rows_wide__ref},
};

const MatMulRow kMatMulRows[] = {
#if defined(INTINFER_HAVE_AVX2)
    {"matmul_u8_8x16c4__avx512vnni", kFeatureAvx2 | kFeatureAvx512Vnni, matmul_u8_8x16c4__avx512vnni},
#endif
#if defined(INTINFER_HAVE_NEONDOT)
    {"matmul_u8_4x16c4__neondot", kFeatureNeon | kFeatureNeonDot, matmul_u8_4x16c4__neondot},
#endif
#if defined(INTINFER_HAVE_NEON) && defined(__aarch64__)
    {"matmul_u8_4x8c16__neon", kFeatureNeon, matmul_u8_4x8c16__neon},
#endif
    {"matmul_u8__ref", 0, matmul_u8__ref},
};

template <typename Row, size_t N>
KernelTable<Row> table(const Row (&rows)[N]) {
  return {rows, N};
}

// The one selection rule: the first row whose features the caller has and which accepts. The
// reference row requires nothing and accepts every format the engine reads, so only a format
// read without a reference kernel, a bug of the engine, finds none.
template <typename Row, typename Accepts>
const Row& first(KernelTable<Row> t, Features features, Accepts&& accepts) {
  for (const Row& row : t)
    if ((row.required & features) == row.required && accepts(row)) return row;
  throw std::logic_error(std::string("no kernel row accepts these weights (reference row ") + t.rows[t.size - 1].name +
                         ")");
}

}  // namespace

KernelTable<GemmRow> gemm_table() { return table(kGemmRows); }
KernelTable<GemmRow> gemm_s16_table() { return table(kGemmS16Rows); }
KernelTable<DwconvRow> dwconv_table() { return table(kDwconvRows); }
KernelTable<ElementwiseRow> elementwise_table() { return table(kElementwiseRows); }
KernelTable<PoolRow> pool_table() { return table(kPoolRows); }
KernelTable<TransformerRow> transformer_table() { return table(kTransformerRows); }
KernelTable<MatMulRow> matmul_table() { return table(kMatMulRows); }

const GemmRow& select(KernelTable<GemmRow> t, Features features, const WeightFormat& format, size_t depth) {
  return first(t, features, [&](const GemmRow& row) { return row.accepts(format, depth); });
}
const DwconvRow& select(KernelTable<DwconvRow> t, Features features, const WeightFormat& format, size_t depth) {
  return first(t, features, [&](const DwconvRow& row) { return row.accepts(format, depth); });
}
const ElementwiseRow& select(KernelTable<ElementwiseRow> t, Features features) {
  return first(t, features, [](const ElementwiseRow&) { return true; });
}
const PoolRow& select(KernelTable<PoolRow> t, Features features) {
  return first(t, features, [](const PoolRow&) { return true; });
}
const TransformerRow& select(KernelTable<TransformerRow> t, Features features) {
  return first(t, features, [](const TransformerRow&) { return true; });
}
const MatMulRow& select(KernelTable<MatMulRow> t, Features features) {
  return first(t, features, [](const MatMulRow&) { return true; });
}

}  // namespace intinfer
