// Static memory plan: every activation gets an offset in one arena; tensors whose lifetimes
// do not overlap share bytes ("greedy by size", as TFLite's arena planner).
#pragma once

#include <cstddef>
#include <vector>

namespace intinfer {

struct Lifetime {
  size_t bytes;
  int first;  // first op step at which the tensor must hold its value
  int last;   // last op step that reads it
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // one per lifetime, 64-byte aligned
  size_t arena_bytes = 0;
  size_t naive_bytes = 0;
};

ArenaPlan plan_arena(const std::vector<Lifetime>& tensors);

}  // namespace intinfer
