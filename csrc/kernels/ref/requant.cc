#include "requant.h"

#include <cmath>

namespace intinfer {

bool quantize_multiplier(double real, QuantizedMultiplier* out) {
  if (!(real > 0) || !std::isfinite(real)) {
    *out = {};
    return real == 0;
  }
  int exponent = 0;
  const double mantissa = std::frexp(real, &exponent);  // in [0.5, 1)
  // mantissa * 2^31 is exact in double: round half away from zero without another rounding.
  const double scaled = std::ldexp(mantissa, 31);
  int64_t q = static_cast<int64_t>(scaled);
  if (scaled - static_cast<double>(q) >= 0.5) ++q;
  if (q == (int64_t{1} << 31)) {
    q >>= 1;
    ++exponent;
  }
  if (exponent < -31) {
    *out = {};
    return true;
  }
  if (exponent > 30) return false;
  *out = {static_cast<int32_t>(q), exponent};
  return true;
}

}  // namespace intinfer
