// Numpy-style broadcasting for binary elementwise ops, walked one innermost row at a time.
#pragma once

#include <string>

#include "op.h"

namespace intinfer {

Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& op_name);

// Calls row(a_offset, a_step, b_offset, b_step, y_offset, n) for each innermost row of y;
// a step of 0 repeats one element along the row.
template <typename F>
void for_each_broadcast_row(const Shape& a, const Shape& b, const Shape& y, F&& row) {
  const size_t rank = y.size();
  std::vector<int64_t> as(rank, 0), bs(rank, 0);  // element strides, 0 where broadcast
  int64_t sa = 1, sb = 1;
  for (size_t i = rank; i-- > 0;) {
    const size_t ia = i + a.size() - rank, ib = i + b.size() - rank;
    const int64_t da = i + a.size() >= rank ? a[ia] : 1, db = i + b.size() >= rank ? b[ib] : 1;
    as[i] = da == 1 ? 0 : sa;
    bs[i] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
  }
  const int64_t n = rank ? y[rank - 1] : 1;
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < rank; ++i) rows *= y[i];
  std::vector<int64_t> idx(rank, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t ao = 0, bo = 0;
    for (size_t i = 0; i + 1 < rank; ++i) {
      ao += idx[i] * as[i];
      bo += idx[i] * bs[i];
    }
    row(static_cast<size_t>(ao), static_cast<size_t>(rank ? as[rank - 1] : 0), static_cast<size_t>(bo),
        static_cast<size_t>(rank ? bs[rank - 1] : 0), static_cast<size_t>(r * n), static_cast<size_t>(n));
    for (size_t i = rank - 1; i-- > 0;) {
      if (++idx[i] < y[i]) break;
      idx[i] = 0;
    }
  }
}

}  // namespace intinfer
