#include <algorithm>
#include <cmath>
#include <cstring>

#include "../codes.h"
#include "../transformer_math.h"
#include "kernels.h"

namespace intinfer {

void gather_rows__ref(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                      const OutputStage& out, const int32_t* rows, size_t n_rows, uint8_t* y) {
  with_codes(bits, [&](auto codes) {
    using C = decltype(codes);
    for (size_t i = 0; i < n_rows; ++i) {
      const uint8_t* src = static_cast<const uint8_t*>(table) + static_cast<size_t>(rows[i]) * C::row_bytes(h);
      const QuantizedMultiplier m = row_multipliers[rows[i]];
      for (size_t c = 0; c < h; ++c) y[i * h + c] = out.apply(C::at(src, c), m);
    }
  });
}

namespace {

// The LAYER_NORM row loop for any integer input type (uint8 with a zero point, or wide) and
// output type (uint8 or wide).
template <typename T, typename Out>
void layer_norm_rows(const LayerNormParams& p, const T* x, Out* y, size_t row_begin, size_t row_end) {
  const int64_t h = static_cast<int64_t>(p.h);
  for (size_t r = row_begin; r < row_end; ++r) {
    const T* xr = x + r * p.h;
    Out* yr = y + r * p.h;
    int64_t sum = 0;
    for (size_t c = 0; c < p.h; ++c) sum += static_cast<int64_t>(xr[c]) - p.input_zero_point;
    // d = H * (x - mean), exact; V = sum of d^2 = H^3 * variance.
    uint64_t v = 0;
    for (size_t c = 0; c < p.h; ++c) {
      const int64_t d = h * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum;
      v += static_cast<uint64_t>(d * d);
    }
    // t = d / sqrt(V) in Q15 = (x - mean) / std / sqrt(H).
    const int64_t inv = layer_norm_inverse(v);
    for (size_t c = 0; c < p.h; ++c)
      yr[c] = static_cast<Out>(
          layer_norm_output(p, h * (static_cast<int64_t>(xr[c]) - p.input_zero_point) - sum, inv, c));
  }
}

}  // namespace

void layer_norm_u8__ref(const LayerNormParams& p, const uint8_t* x, void* y, size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, x, out, row_begin, row_end); });
}

void layer_norm_wide__ref(const LayerNormParams& p, const int32_t* x, void* y, size_t row_begin, size_t row_end) {
  with_layer_norm_output(p, y, [&](auto* out) { layer_norm_rows(p, x, out, row_begin, row_end); });
}

void gather_rows_wide__ref(int bits, const void* table, size_t h, const QuantizedMultiplier* row_multipliers,
                           const int32_t* rows, size_t n_rows, int32_t* y) {
  with_codes(bits, [&](auto codes) {
    using C = decltype(codes);
    for (size_t i = 0; i < n_rows; ++i) {
      const uint8_t* src = static_cast<const uint8_t*>(table) + static_cast<size_t>(rows[i]) * C::row_bytes(h);
      const QuantizedMultiplier m = row_multipliers[rows[i]];
      for (size_t c = 0; c < h; ++c) y[i * h + c] = clamp_wide(requantize(C::at(src, c), m));
    }
  });
}

void add_wide__ref(const AddWideParams& p, const void* a, size_t a_step, const void* b, size_t b_step, int32_t* y,
                   size_t n) {
  auto at = [](const void* v, bool wide, size_t i) -> int32_t {
    return wide ? static_cast<const int32_t*>(v)[i] : static_cast<const uint8_t*>(v)[i];
  };
  for (size_t i = 0; i < n; ++i) {
    const int32_t av = requantize((at(a, p.a_wide, i * a_step) - p.a_zero_point) * (1 << AddWideParams::kLeftShift),
                                  p.a_multiplier);
    const int32_t bv = requantize((at(b, p.b_wide, i * b_step) - p.b_zero_point) * (1 << AddWideParams::kLeftShift),
                                  p.b_multiplier);
    y[i] = clamp_wide(requantize(av + bv, p.out_multiplier));
  }
}

void wide_from_f32__ref(void* data, size_t n, float scale) {
  uint8_t* bytes = static_cast<uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, bytes + 4 * i, 4);
    float v = f / scale;
    if (std::isnan(v)) v = 0.0f;
    v = v < -65536.0f ? -65536.0f : (v > 65536.0f ? 65536.0f : v);  // bounded before the cast
    const int32_t q = clamp_wide(static_cast<int64_t>(std::nearbyint(v)));
    std::memcpy(bytes + 4 * i, &q, 4);
  }
}

void softmax_u8__ref(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask, uint8_t* y,
                     size_t row_begin, size_t row_end) {
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* xr = x + r * p.n;
    const uint8_t* mr = mask ? mask[r] : nullptr;
    uint8_t* yr = y + r * p.n;
    const int32_t top = softmax_row_max(p.n, xr, mr, yr);
    if (top < 0) continue;  // nothing attended: written as zeros
    uint64_t sum = 0;
    for (size_t j = 0; j < p.n; ++j)
      if (!mr || mr[j]) sum += static_cast<uint64_t>(p.exp_table[top - xr[j]]);
    // sum >= table[0] = 2^16, so inv <= 2^16 and e * inv < 2^33.
    const uint64_t inv = (uint64_t{1} << 32) / sum;
    for (size_t j = 0; j < p.n; ++j)
      yr[j] = softmax_output(!mr || mr[j] ? static_cast<uint64_t>(p.exp_table[top - xr[j]]) : 0, inv);
  }
}

void softmax_biased_u8__ref(const SoftmaxParams& p, const uint8_t* x, const uint8_t* const* mask,
                            const int32_t* const* bias, uint8_t* y, size_t row_begin, size_t row_end,
                            int32_t* scratch) {
  const int64_t last = static_cast<int64_t>(p.table_size) - 1;
  for (size_t r = row_begin; r < row_end; ++r) {
    const uint8_t* xr = x + r * p.n;
    const uint8_t* mr = mask ? mask[r] : nullptr;
    uint8_t* yr = y + r * p.n;
    bool any = false;
    int32_t top = 0;
    for (size_t j = 0; j < p.n; ++j) {
      scratch[j] = static_cast<int32_t>(xr[j]) + bias[r][j];
      if (!mr || mr[j]) {
        top = any && top > scratch[j] ? top : scratch[j];
        any = true;
      }
    }
    uint64_t sum = 0;
    for (size_t j = 0; j < p.n; ++j) {
      const int64_t d = std::min<int64_t>(static_cast<int64_t>(top) - scratch[j], last);
      scratch[j] = !any || (mr && !mr[j]) ? 0 : p.exp_table[d];
      sum += static_cast<uint64_t>(scratch[j]);
    }
    // As softmax_u8__ref: the maximum contributes 2^16, so inv <= 2^16; nothing attended: zeros.
    const uint64_t inv = any ? (uint64_t{1} << 32) / sum : 0;
    for (size_t j = 0; j < p.n; ++j) yr[j] = softmax_output(static_cast<uint64_t>(scratch[j]), inv);
  }
}

void matmul_u8__ref(const MatMulParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y, size_t row_begin,
                    size_t row_end, void*) {
  for (size_t i = row_begin; i < row_end; ++i)
    for (size_t j = 0; j < p.n; ++j) {
      int32_t acc = 0;
      for (size_t k = 0; k < p.k; ++k) {
        const uint8_t bv = p.transpose_b ? b[j * p.k + k] : b[k * p.n + j];
        acc += (static_cast<int32_t>(a[i * p.k + k]) - p.a_zero_point) * (static_cast<int32_t>(bv) - p.b_zero_point);
      }
      y[i * p.n + j] = p.out.apply(acc, p.multiplier);
    }
}

void masked_mean_u8_f32__ref(const uint8_t* x, const uint8_t* mask, size_t s, size_t h, int32_t zero_point,
                             double input_scale, float* y) {
  size_t count = 0;
  for (size_t i = 0; i < s; ++i) count += mask[i] != 0;
  const float scale = count == 0 ? 0.0f : static_cast<float>(input_scale / static_cast<double>(count));
  for (size_t c = 0; c < h; ++c) {
    int32_t acc = 0;
    for (size_t i = 0; i < s; ++i)
      if (mask[i]) acc += static_cast<int32_t>(x[i * h + c]) - zero_point;
    y[c] = static_cast<float>(acc) * scale;
  }
}

}  // namespace intinfer
