#include "pack.h"

#include <algorithm>
#include <cstring>

#include "codes.h"
#include "sparse.h"

namespace intinfer {
namespace {

// The `count` multipliers and shifts, padded to `padded` entries with a harmless multiplier
// (1/2, no shift: lanes computed and never stored, whatever RequantShifts instance runs them).
void pack_requant(const QuantizedMultiplier* multipliers, size_t count, size_t padded, std::vector<int32_t>* m,
                  std::vector<int32_t>* left, std::vector<int32_t>* right) {
  m->assign(padded, 1 << 30);
  left->assign(padded, 0);
  right->assign(padded, 0);
  for (size_t c = 0; c < count; ++c) {
    (*m)[c] = multipliers[c].multiplier;
    (*left)[c] = multipliers[c].shift > 0 ? multipliers[c].shift : 0;
    (*right)[c] = multipliers[c].shift > 0 ? 0 : -multipliers[c].shift;
  }
}

// Codes [n][k] of type Src into tiles of Dst (TileLayout), and each channel's sum of codes in
// `sums` (for the activation offset). One instance per (source, packed) width pair, so the
// element loop has no branches: MATMUL packs per call.
template <typename Src, typename Dst>
void pack_codes(const TileLayout& layout, const Src* codes, size_t n, size_t k, size_t k_pad, Dst* out,
                int64_t* sums) {
  const size_t nr = layout.nr, kr = layout.kr, groups = k_pad / kr;
  for (size_t c = 0; c < n; ++c) {
    const size_t tile = c / nr, lane = c % nr;
    const size_t pos = layout.lane_order ? layout.lane_order[lane] : lane;
    Dst* dst = out + (tile * groups * nr + pos) * kr;
    const Src* src = codes + c * k;
    int64_t sum = 0;
    // Group by group: no division by the (run-time) kr per element.
    for (size_t i0 = 0; i0 < k; i0 += kr, dst += nr * kr)
      for (size_t i = i0; i < k && i < i0 + kr; ++i) {
        dst[i - i0] = static_cast<Dst>(src[i]);
        sum += src[i];
      }
    sums[c] = sum;
  }
}

// Each group of nr x kr packed int8 codes into its sub-byte form (TileLayout): code j of a group,
// plus `offset`, in byte j mod B at bits (j / B) x bits.
std::vector<uint8_t> compress_groups(const std::vector<uint8_t>& codes, size_t group, int bits, uint8_t offset) {
  const size_t bytes = group * bits / 8, mask = (1u << bits) - 1;
  std::vector<uint8_t> out(codes.size() / group * bytes, 0);
  for (size_t g = 0; g < codes.size() / group; ++g)
    for (size_t j = 0; j < group; ++j)
      out[g * bytes + j % bytes] |=
          static_cast<uint8_t>(((codes[g * group + j] + offset) & mask) << (j / bytes * bits));
  return out;
}

template <typename Src>
void pack_codes_to(const TileLayout& layout, const Src* codes, size_t n, size_t k, size_t k_pad, uint8_t* out,
                   int64_t* sums) {
  if (layout.elem_bytes == 2)
    pack_codes(layout, codes, n, k, k_pad, reinterpret_cast<int16_t*>(out), sums);
  else
    pack_codes(layout, codes, n, k, k_pad, reinterpret_cast<int8_t*>(out), sums);
}

// Block-sparse codes of n channels regrouped as TileLayout says: the groups of kr reduction
// indices that hold a non-zero code, their first indices, their codes (kr each, int8 or int16),
// and each channel's sum of codes.
void pack_sparse(const TileLayout& layout, const BlockSparseRows& src, size_t n,
                 std::vector<uint32_t>* start, std::vector<uint32_t>* first, std::vector<uint8_t>* codes,
                 int64_t* sums) {
  const size_t kr = layout.kr;
  std::vector<int16_t> values;
  start->assign(1, 0);
  for (size_t c = 0; c < n; ++c) {
    int64_t sum = 0;
    src.for_each(c, [&](size_t k0, const int8_t* v) {
      for (size_t i = 0; i < src.block(); ++i) {
        if (v[i] == 0) continue;
        const size_t k = k0 + i, group_k = k / kr * kr;
        if (first->size() == start->back() || first->back() != group_k) {
          first->push_back(static_cast<uint32_t>(group_k));
          values.resize(values.size() + kr, 0);
        }
        values[values.size() - kr + k % kr] = v[i];
        sum += v[i];
      }
    });
    start->push_back(static_cast<uint32_t>(first->size()));
    sums[c] = sum;
  }
  first->resize(first->size() + 7, 0);
  values.resize(values.size() + 7 * kr, 0);  // a kernel may load eight groups from any group
  codes->assign(values.size() * layout.elem_bytes, 0);
  if (layout.elem_bytes == 2)
    std::memcpy(codes->data(), values.data(), codes->size());
  else
    for (size_t i = 0; i < values.size(); ++i) (*codes)[i] = static_cast<uint8_t>(values[i]);
}

}  // namespace

RequantShifts requant_shifts(const QuantizedMultiplier* multipliers, size_t count) {
  const QuantizedMultiplier* end = multipliers + count;
  if (std::any_of(multipliers, end, [](QuantizedMultiplier q) { return q.shift > 0; })) return RequantShifts::kLeft;
  if (std::all_of(multipliers, end, [](QuantizedMultiplier q) {
        return q.shift < 0 || q.multiplier == 0;  // a zero multiplier gives 0 whatever the shift
      }))
    return RequantShifts::kRight;
  return RequantShifts::kRightOrNone;
}

PackedWeights::PackedWeights(const TileLayout& layout, const void* codes, const WeightFormat& format, size_t n,
                             size_t k, const int32_t* bias, const std::vector<QuantizedMultiplier>& multipliers,
                             const std::vector<float>& output_scales, size_t row_length)
    : layout_(layout), source_(codes), format_bits_(format.bits), n_(n), k_(k) {
  const size_t nr = layout.nr == 0 ? n : layout.nr;
  n_tiles_ = layout.nr == 0 ? 1 : (n + nr - 1) / nr;
  k_pad_ = (k + layout.k_align - 1) / layout.k_align * layout.k_align;
  const size_t n_pad = layout.nr == 0 ? n : n_tiles_ * nr;
  bias_.assign(n_pad, 0);
  std::memcpy(bias_.data(), bias, n * sizeof(int32_t));
  if (!multipliers.empty()) {
    pack_requant(multipliers.data(), multipliers.size(), n_pad, &multiplier_, &left_shift_, &right_shift_);
    shifts_ = requant_shifts(multipliers.data(), multipliers.size());
  } else {
    output_scales_.assign(n_pad, 0.0f);
    std::memcpy(output_scales_.data(), output_scales.data(), n * sizeof(float));
  }
  if (layout.nr == 0) multipliers_ = multipliers;  // the reference kernels take them as they are
  std::vector<int64_t> sums(n);
  if (format.layout == WeightFormat::Layout::kBlockSparse) {
    const BlockSparseRows rows(codes, format.block_index, n, k, row_length == 0 ? k : row_length);
    pack_sparse(layout, rows, n, &group_start_, &group_k_, &codes_, sums.data());
  } else if (layout.nr == 0) {
    return;
  } else if (format.bits == 16) {
    codes_.assign(n_tiles_ * nr * k_pad_ * layout.elem_bytes, 0);
    pack_codes_to(layout, static_cast<const int16_t*>(codes), n, k, k_pad_, codes_.data(), sums.data());
  } else {
    // Packed sub-byte rows are decoded for packing only: the kernel reads its tiles.
    const int8_t* src = static_cast<const int8_t*>(codes);
    std::vector<int8_t> decoded;
    if (format.bits < 8) {
      decoded.resize(n * k);
      with_codes(format.bits, [&](auto c) {
        using C = decltype(c);
        for (size_t ch = 0; ch < n; ++ch) {
          const uint8_t* row = static_cast<const uint8_t*>(codes) + ch * C::row_bytes(k);
          for (size_t i = 0; i < k; ++i) decoded[ch * k + i] = static_cast<int8_t>(C::at(row, i));
        }
      });
      src = decoded.data();
    }
    if (layout.code_bits < 8) {
      codes_.assign(n_tiles_ * nr * k_pad_, 0);
      pack_codes(layout, src, n, k, k_pad_, reinterpret_cast<int8_t*>(codes_.data()), sums.data());
      codes_ = compress_groups(codes_, size_t{nr} * layout.kr, layout.code_bits, layout.code_offset);
    } else {
      codes_.assign(n_tiles_ * nr * k_pad_ * layout.elem_bytes, 0);
      pack_codes_to(layout, src, n, k, k_pad_, codes_.data(), sums.data());
    }
  }
  // Modulo 2^32, as the kernel's adds: the final sum is the exact one, proven to fit at load.
  if (layout.act_offset != 0)
    for (size_t c = 0; c < n; ++c)
      bias_[c] = static_cast<int32_t>(static_cast<uint32_t>(bias_[c]) +
                                      static_cast<uint32_t>(static_cast<int64_t>(layout.act_offset) * sums[c]));
}

size_t PackedWeights::bytes() const {
  return codes_.size() + sizeof(uint32_t) * (group_start_.size() + group_k_.size()) +
         sizeof(int32_t) * (bias_.size() + multiplier_.size() + left_shift_.size() + right_shift_.size()) +
         sizeof(QuantizedMultiplier) * multipliers_.size() + sizeof(float) * output_scales_.size();
}

PackedView PackedWeights::view() const {
  const bool sparse = !group_start_.empty();
  return PackedView{layout_.nr == 0 && !sparse ? source_ : codes_.data(),
                    bias_.data(),
                    multiplier_.data(),
                    left_shift_.data(),
                    right_shift_.data(),
                    multipliers_.data(),
                    output_scales_.empty() ? nullptr : output_scales_.data(),
                    n_,
                    k_,
                    k_pad_,
                    n_tiles_,
                    static_cast<uint8_t>(layout_.nr == 0 && !sparse ? format_bits_
                                         : layout_.code_bits < 8    ? layout_.code_bits
                                                                    : 8 * layout_.elem_bytes),
                    sparse ? group_start_.data() : nullptr,
                    sparse ? group_k_.data() : nullptr,
                    shifts_};
}

PackedLayerNorm::PackedLayerNorm(const LayerNormParams& p, size_t width) {
  const size_t padded = (p.h + width - 1) / width * width;
  pack_requant(p.multipliers, p.h, padded, &multiplier_, &left_shift_, &right_shift_);
  shifts_ = requant_shifts(p.multipliers, p.h);
  sign_.assign(padded, 0);
  offset_.assign(padded, 0);
  bias_.assign(padded, 0);
  for (size_t c = 0; c < p.h; ++c) {
    sign_[c] = p.signs[c];
    offset_[c] = p.offsets[c];
    bias_[c] = p.biases[c];
  }
}

LayerNormView PackedLayerNorm::view() const {
  return LayerNormView{multiplier_.data(), left_shift_.data(), right_shift_.data(), sign_.data(),
                       offset_.data(),     bias_.data(),       shifts_};
}

}  // namespace intinfer
