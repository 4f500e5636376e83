// ThreadPool::parallel_for (csrc/core/thread_pool.cc) checked directly: every index run exactly
// once and chunks aligned to the grain, over many sizes and thread counts; and a stalled worker
// (a thread the OS does not run) must not hold up the work it has not started, and after a call
// that waited long for one, the next calls run on the caller alone for a while. Run by
// tests/test_thread_pool.py; prints one line per failure and exits non-zero after any.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace {

int failures = 0;

void fail(const char* what, size_t n, int threads, size_t grain) {
  std::printf("FAIL %s: n=%zu threads=%d grain=%zu\n", what, n, threads, grain);
  ++failures;
}

// Every index in [0, n) once; every chunk but the one ending at n a multiple of the grain.
void check_cover(intinfer::ThreadPool& pool, size_t n, size_t grain) {
  std::vector<std::atomic<int>> hits(n);
  std::atomic<bool> misaligned{false};
  pool.parallel_for(n, [&](size_t b, size_t e) {
    if (b % grain != 0 || (e != n && (e - b) % grain != 0) || b >= e || e > n) misaligned = true;
    for (size_t i = b; i < e && i < n; ++i) hits[i].fetch_add(1);
  }, grain);
  for (size_t i = 0; i < n; ++i)
    if (hits[i].load() != 1) return fail("an index not run exactly once", n, pool.num_threads(), grain);
  if (misaligned) fail("a chunk not aligned to the grain", n, pool.num_threads(), grain);
}

// Polls ready() every 50 us until it holds (true) or a 20-second guard ends the wait (false).
template <typename Ready>
bool wait_for(Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

// The first chunk a worker takes stalls until every other index has run, as if the OS had
// descheduled that thread; the caller is held at its first chunk until a worker has started, so
// the stall always happens. The other threads must take the stalled worker's remaining work, so
// that it holds up less than a thread's share of the op (a fixed share per thread holds up all of
// it); a 20-second guard ends a stall that nothing relieves, and fails the check.
void check_stalled_worker(int threads) {
  intinfer::ThreadPool pool(threads);
  const size_t n = 1000;
  const auto caller = std::this_thread::get_id();
  std::atomic<size_t> done{0}, held{0};
  std::atomic<bool> worker_started{false}, stalled_once{false}, guard_hit{false};
  pool.parallel_for(n, [&](size_t b, size_t e) {
    if (std::this_thread::get_id() == caller) {
      if (!wait_for([&] { return worker_started.load(); })) guard_hit = true;
    } else {
      worker_started = true;
      if (!stalled_once.exchange(true)) {
        held = e - b;
        if (!wait_for([&] { return done.load() == n - (e - b); })) guard_hit = true;
      }
    }
    done.fetch_add(e - b);
  });
  if (guard_hit || done.load() != n) fail("the other threads did not finish while a worker stalled", n, threads, 1);
  if (held.load() * threads >= n) fail("a stalled worker held a whole thread's share", n, threads, 1);
}

// Whether a call of parallel_for ran any chunk off the caller's thread. Each chunk the caller
// runs takes a millisecond (time for an idle worker to wake and claim one), and with
// `wait_for_worker` the caller's first chunk waits until a worker has started (a 20-second guard
// ends a wait for a worker that never comes); the first chunk a worker runs takes `hold`.
bool ran_on_a_worker(intinfer::ThreadPool& pool, std::chrono::milliseconds hold, bool wait_for_worker) {
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> worker_started{false};
  pool.parallel_for(64, [&](size_t, size_t) {
    if (std::this_thread::get_id() != caller) {
      if (!worker_started.exchange(true)) std::this_thread::sleep_for(hold);
      return;
    }
    if (wait_for_worker) wait_for([&] { return worker_started.load(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  return worker_started.load();
}

// A worker that holds its chunk for half a second (a descheduled thread) makes the caller wait
// far longer than its own share: the next kMinSoloCalls calls run on the caller alone; the call
// after them uses the workers again (the caller waits for one to start, so a pool still alone
// would stop there until the guard).
void check_straggler_backoff() {
  using intinfer::ThreadPool;
  ThreadPool pool(2);
  if (!ran_on_a_worker(pool, std::chrono::milliseconds(500), true))
    return fail("no worker started while the caller waited for one", 64, 2, 1);
  for (uint32_t i = 0; i < ThreadPool::kMinSoloCalls; ++i)
    if (ran_on_a_worker(pool, std::chrono::milliseconds(0), false))
      return fail("a worker ran a chunk right after a straggling call", 64, 2, 1);
  if (!ran_on_a_worker(pool, std::chrono::milliseconds(0), true))
    fail("the workers did not take part again after kMinSoloCalls calls", 64, 2, 1);
}

}  // namespace

int main() {
  for (int threads : {1, 2, 3, 4, 8}) {
    intinfer::ThreadPool pool(threads);
    for (size_t grain : {1, 4, 7})
      for (size_t n = 0; n < 300; ++n) check_cover(pool, n, grain);
    check_cover(pool, 100000, 4);
  }
  for (int threads : {2, 4}) check_stalled_worker(threads);
  check_straggler_backoff();
  if (failures == 0) std::printf("thread pool: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
