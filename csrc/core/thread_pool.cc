#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace intinfer {
namespace {

std::pair<size_t, size_t> chunk(size_t n, int parts, int i) {
  const size_t base = n / parts, extra = n % parts;
  const size_t begin = i * base + std::min<size_t>(i, extra);
  return {begin, begin + base + (static_cast<size_t>(i) < extra ? 1 : 0)};
}

// About 50 microseconds of polling before a thread sleeps: longer than the gap between two ops.
constexpr int kSpins = 20000;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

}  // namespace

// Every live ForkMutex, and how many fork()s separate this process from the one that loaded.
struct ForkRegistry {
  std::mutex mutex;
  std::set<ForkMutex*> live;
  std::atomic<uint64_t> forks{0};

  static ForkRegistry& get() {
    // Never destroyed: a model may be freed after static destructors ran (Python's exit).
    static ForkRegistry* registry = [] {
      auto* r = new ForkRegistry;
      pthread_atfork(&prepare, &parent, &child);
      return r;
    }();
    return *registry;
  }

  static void prepare() {
    ForkRegistry& r = get();
    r.mutex.lock();
    for (ForkMutex* m : r.live) m->mutex_.lock();
  }
  static void parent() { release(get()); }
  static void child() {
    ForkRegistry& r = get();
    r.forks.fetch_add(1, std::memory_order_relaxed);
    release(r);
  }
  static void release(ForkRegistry& r) {
    for (ForkMutex* m : r.live) m->mutex_.unlock();
    r.mutex.unlock();
  }
};

ForkMutex::ForkMutex() {
  ForkRegistry& r = ForkRegistry::get();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.live.insert(this);
}

ForkMutex::~ForkMutex() {
  ForkRegistry& r = ForkRegistry::get();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.live.erase(this);
}

// What the worker threads share with the caller. A forked child abandons it whole (thread_pool.h):
// its threads, mutex and condition variables belong to the parent.
struct ThreadPool::Workers {
  explicit Workers(int parts) : parts(parts) {}
  void loop(int index);
  void stop_and_join();

  const int parts;
  std::vector<std::thread> threads;
  std::mutex mutex;  // pairs with the condition variables
  std::condition_variable wake, done;
  const std::function<void(size_t, size_t)>* job = nullptr;  // published by generation
  size_t job_n = 0;
  std::atomic<size_t> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stop{false};
};

void ThreadPool::Workers::stop_and_join() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stop.store(true);
  }
  wake.notify_all();
  for (auto& t : threads) t.join();
}

void ThreadPool::Workers::loop(int index) {
  size_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpins && generation.load(std::memory_order_acquire) == seen && !stop.load(); ++i) relax();
    if (generation.load(std::memory_order_acquire) == seen && !stop.load()) {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stop.load() || generation.load(std::memory_order_acquire) != seen; });
    }
    if (stop.load()) return;
    seen = generation.load(std::memory_order_acquire);
    auto [b, e] = chunk(job_n, parts, index);
    if (b < e) (*job)(b, e);
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex);
      done.notify_one();
    }
  }
}

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(std::max(1, num_threads)), fork_count_(ForkRegistry::get().forks.load()) {
  workers_ = start();
}

std::unique_ptr<ThreadPool::Workers> ThreadPool::start() const {
  auto w = std::make_unique<Workers>(num_threads_);
  w->threads.reserve(num_threads_ - 1);
  try {
    for (int i = 1; i < num_threads_; ++i) w->threads.emplace_back(&Workers::loop, w.get(), i);
  } catch (const std::system_error& e) {
    // Those already started wait on w's condition variable: stop them before it is destroyed.
    const size_t started = w->threads.size();
    w->stop_and_join();
    throw std::system_error(e.code(), "cannot start a pool of " + std::to_string(num_threads_) +
                                          " threads (the OS refused worker thread " + std::to_string(started + 1) + ")");
  } catch (...) {
    w->stop_and_join();
    throw;
  }
  return w;
}

ThreadPool::~ThreadPool() {
  if (fork_count_ != ForkRegistry::get().forks.load()) {
    (void)workers_.release();  // a forked child's copy of the parent's workers (thread_pool.h)
    return;
  }
  if (workers_) workers_->stop_and_join();
}

ThreadPool::Workers* ThreadPool::workers() {
  const uint64_t forks = ForkRegistry::get().forks.load();
  if (forks != fork_count_) {
    (void)workers_.release();  // the parent's (thread_pool.h)
    workers_ = start();
    fork_count_ = forks;
  }
  return workers_.get();
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  if (num_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<ForkMutex> call(call_mutex_);
  Workers& w = *workers();
  w.job = &fn;
  w.job_n = n;
  w.pending.store(num_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(w.mutex);
    w.generation.fetch_add(1, std::memory_order_release);  // publishes job and job_n
  }
  w.wake.notify_all();
  auto [b, e] = chunk(n, num_threads_, 0);
  if (b < e) fn(b, e);
  for (int i = 0; i < kSpins && w.pending.load(std::memory_order_acquire) != 0; ++i) relax();
  if (w.pending.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(w.mutex);
    w.done.wait(lock, [&] { return w.pending.load(std::memory_order_acquire) == 0; });
  }
  w.job = nullptr;
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int default_num_threads() {
  // Count distinct (package, core) pairs: SMT siblings share a core and its SIMD units.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, phys = "0";
  while (std::getline(cpuinfo, line)) {
    auto value = [&] { return line.substr(line.find(':') + 1); };
    if (line.rfind("physical id", 0) == 0) phys = value();
    if (line.rfind("core id", 0) == 0) cores.emplace(phys, value());
  }
  // A container or taskset may allow fewer CPUs than the machine has cores.
  const int cpus = available_cpus();
  return cores.empty() ? cpus : std::min(cpus, static_cast<int>(cores.size()));
}

}  // namespace intinfer
