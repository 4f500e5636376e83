#include "broadcast.h"

namespace intinfer {

Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& op_name) {
  const size_t rank = a.size() > b.size() ? a.size() : b.size();
  Shape y(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    if (da != db && da != 1 && db != 1)
      shape_error(op_name, "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    y[i] = da == 1 ? db : da;
  }
  return y;
}

}  // namespace intinfer
