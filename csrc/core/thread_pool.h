// A fixed pool of worker threads for intra-op parallelism. parallel_for splits [0, n) into
// contiguous chunks, one per thread; the caller's thread takes the first chunk.
//
// A model runs dozens of short ops in a row, so waking workers through a condition variable
// for each (tens of microseconds) would eat the gain of a second core. Workers and caller
// therefore spin briefly on atomics first and only then sleep on the condition variables (as
// pthreadpool does for XNNPACK).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace intinfer {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // fn(begin, end) over disjoint chunks covering [0, n). Serialised: one call at a time.
  void parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker(int index);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time
  std::mutex mutex_;       // pairs with the condition variables
  std::condition_variable wake_, done_;
  const std::function<void(size_t, size_t)>* job_ = nullptr;  // published by generation_
  size_t job_n_ = 0;
  std::atomic<size_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

// One per physical core where the OS tells, else one per logical CPU.
int default_num_threads();

}  // namespace intinfer
