// A fixed pool of worker threads for intra-op parallelism. parallel_for splits [0, n) into a few
// contiguous chunks per thread, which the caller's thread and the workers claim one at a time
// until none is left: a thread that the OS does not run just then (the machine busy with another
// process, or another runtime's threads still spinning after its call) leaves its share to the
// others instead of holding up the op (docs/runtime.md, bench/contention.py).
//
// A model runs dozens of short ops in a row, so waking workers through a condition variable
// for each (tens of microseconds) would eat the gain of a second core. Workers and caller
// therefore poll atomics for about 100 microseconds first and only then sleep on the condition
// variables (as pthreadpool does for XNNPACK). Between polls they yield the core: on a machine
// busy with another process, a spinning worker often shares a core with the caller's thread,
// whose serial work it would otherwise slow (EfficientNet-Lite0, 2 threads, one core busy: 39.3
// ms with pure spinning, 35.8 ms yielding, 36.1 ms for 1 thread; bench/contention.py).
//
// When a worker is descheduled while it holds a chunk, the caller waits for it; if that wait is
// longer than the caller's own share of the call (and than kStragglerWait), the cores are not
// really free just then, and the next kMinSoloCalls calls run on the caller's thread alone, as
// with one thread, before a call tries the workers again; each further such call doubles the
// count, up to kMaxSoloCalls, and a call that goes well resets it (docs/runtime.md).
//
// fork(): the child has only the thread that called fork(). pthread_atfork handlers take every
// ForkMutex before fork(), so no parallel section is in flight and no plan is being cached; in the
// child the pool leaves its workers' state behind untouched (joining threads that are not there,
// or destroying a condition variable they waited on, would block forever) and starts new workers
// at its first parallel_for. A child that never runs the model starts no thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

namespace intinfer {

// A mutex that fork() never copies in the locked state: the prepare handler locks every live
// ForkMutex (waiting for the threads that hold one), the parent and child handlers unlock them.
// For short sections that never wait for another ForkMutex while holding one.
class ForkMutex {
 public:
  ForkMutex();
  ~ForkMutex();
  ForkMutex(const ForkMutex&) = delete;
  ForkMutex& operator=(const ForkMutex&) = delete;
  void lock() { mutex_.lock(); }
  void unlock() { mutex_.unlock(); }

 private:
  friend struct ForkRegistry;
  std::mutex mutex_;
};

class ThreadPool {
 public:
  // Starts num_threads - 1 workers; throws std::system_error, with none left running, when the
  // OS refuses one.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  static constexpr uint32_t kMinSoloCalls = 16;
  static constexpr uint32_t kMaxSoloCalls = 1024;

  // fn(begin, end) over disjoint chunks covering [0, n), each a multiple of `grain` long but the
  // last (a kernel's rows per tile: no chunk ends in a partial tile that a whole one could have
  // been). Serialised: one call at a time.
  void parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn, size_t grain = 1);

 private:
  struct Workers;
  std::unique_ptr<Workers> start() const;
  // After a fork, this process's workers (none yet in a new child).
  Workers* workers();

  const int num_threads_;
  ForkMutex call_mutex_;  // one parallel_for at a time; no fork() during one; guards the next two
  uint32_t solo_calls_ = 0;  // calls left to run on the caller's thread alone
  uint32_t next_solo_calls_ = kMinSoloCalls;
  std::unique_ptr<Workers> workers_;
  uint64_t fork_count_;  // of the process that started workers_
};

// One per physical core where the OS tells, else one per logical CPU; never more than the CPUs
// this process may run on.
int default_num_threads();

// The CPUs this process may run on (its affinity mask), at least 1.
int available_cpus();

}  // namespace intinfer
