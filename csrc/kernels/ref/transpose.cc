#include <cstring>

#include "kernels.h"

namespace intinfer {

void transpose__ref(const uint8_t* x, uint8_t* y, size_t elem_size, int rank, const int64_t* shape,
                    const int64_t* perm) {
  int64_t in_stride[8], out_shape[8], step[8], idx[8] = {0};
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= shape[d];
  }
  const int64_t total = s;
  for (int d = 0; d < rank; ++d) {
    out_shape[d] = shape[perm[d]];
    step[d] = in_stride[perm[d]];
  }
  int64_t offset = 0;  // of the current output element in x, in elements
  for (int64_t i = 0; i < total; ++i) {
    std::memcpy(y + i * elem_size, x + offset * elem_size, elem_size);
    for (int d = rank - 1; d >= 0; --d) {
      offset += step[d];
      if (++idx[d] < out_shape[d]) break;
      offset -= step[d] * out_shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace intinfer
