#include "planner.h"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace intinfer {
namespace {

constexpr size_t kAlign = 64;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool overlap(const Lifetime& a, const Lifetime& b) { return a.first <= b.last && b.first <= a.last; }

}  // namespace

ArenaPlan plan_arena(const std::vector<Lifetime>& tensors) {
  ArenaPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first: big tensors fix the layout, small ones fill the gaps between them.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].bytes > tensors[b].bytes; });

  std::vector<size_t> placed;  // indices, kept sorted by offset
  for (size_t t : order) {
    const size_t need = align_up(tensors[t].bytes);
    plan.naive_bytes += need;
    // Best fit: the smallest gap between live neighbours that holds the tensor.
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (size_t p : placed) {
      if (!overlap(tensors[t], tensors[p])) continue;
      if (plan.offsets[p] >= cursor) {
        const size_t gap = plan.offsets[p] - cursor;
        if (gap >= need && gap < best_gap) {
          best = cursor;
          best_gap = gap;
        }
      }
      cursor = std::max(cursor, plan.offsets[p] + align_up(tensors[p].bytes));
    }
    plan.offsets[t] = best != SIZE_MAX ? best : cursor;
    plan.arena_bytes = std::max(plan.arena_bytes, plan.offsets[t] + need);
    placed.insert(std::upper_bound(placed.begin(), placed.end(), t,
                                   [&](size_t a, size_t b) { return plan.offsets[a] < plan.offsets[b]; }),
                  t);
  }
  return plan;
}

}  // namespace intinfer
