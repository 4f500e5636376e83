// The block loop of the vector elementwise kernels (ISA-neutral).
#pragma once

#include <cstddef>

namespace intinfer {
namespace {

// Runs body(i) over full blocks of kBlock elements and tail(i, rest) once on what is left (the
// kernels give the tail to the reference).
template <size_t kBlock, typename Body, typename Tail>
void for_each_block(size_t n, Body&& body, Tail&& tail) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) body(i);
  if (i < n) tail(i, n - i);
}

}  // namespace
}  // namespace intinfer
