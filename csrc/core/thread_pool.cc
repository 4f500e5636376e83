#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// Each thread claims chunks of a parallel_for until none is left, so a thread that the OS does
// not run (another process's, or another pool's spinning threads hold its core) delays the
// others by at most the chunk it holds, instead of a fixed share of the op. Four chunks per thread
// balance that against the cost of a claim and of a kernel's edge tiles.
constexpr size_t kChunksPerThread = 4;

// How long an idle worker, or the caller waiting for the last chunks, polls before it sleeps:
// longer than the gap between two ops of one run, short enough that spinning threads do not take
// a core from another pool or process for long once the run is over.
constexpr auto kSpinTime = std::chrono::microseconds(100);

// A wait for the workers' last chunks longer than this (and than the caller's own share) means a
// worker holding a chunk was not running: an OS time slice is milliseconds, a chunk that is just
// late, or a worker waking from sleep, tens of microseconds.
constexpr auto kStragglerWait = std::chrono::microseconds(200);

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield");
#endif
}

// Polls done() for kSpinTime, yielding the core between batches of polls (thread_pool.h); true
// when it became true.
template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::yield();
  }
}

// The word that workers claim chunks from: generation (32 bits) | chunk count (16) | next chunk (16).
// Claiming is one compare-and-swap on it, so a worker that wakes late, after its generation has
// ended, can never claim a chunk of the next one with the old count.
constexpr uint64_t claim_word(uint32_t generation, uint32_t chunks, uint32_t next) {
  return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(chunks) << 16) | next;
}
constexpr uint32_t generation_of(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
constexpr uint32_t chunks_of(uint64_t w) { return static_cast<uint32_t>(w >> 16) & 0xffff; }
constexpr uint32_t next_of(uint64_t w) { return static_cast<uint32_t>(w) & 0xffff; }
constexpr size_t kMaxChunks = 0xffff;

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
  void loop();
  // Runs chunks of the job of `generation` until none is left to claim.
  void work(uint32_t generation);
  void stop_and_join();

  std::vector<std::thread> threads;
  std::mutex mutex;  // pairs with the condition variables
  std::condition_variable wake, done;
  // The job: written by the caller before it publishes the generation in `claim`, read by a
  // thread only after it claimed one of its chunks (the caller does not return, and so does not
  // write the next job, before every claimed chunk has finished).
  const std::function<void(size_t, size_t)>* job = nullptr;
  size_t job_n = 0, job_chunk = 0;
  std::atomic<uint64_t> claim{0};
  std::atomic<uint32_t> finished{0};  // chunks of the current job that have run
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

void ThreadPool::Workers::work(uint32_t generation) {
  uint64_t w = claim.load(std::memory_order_acquire);
  while (generation_of(w) == generation && next_of(w) < chunks_of(w)) {
    if (!claim.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const uint32_t chunks = chunks_of(w);
    const size_t begin = next_of(w) * job_chunk;
    (*job)(begin, std::min(job_n, begin + job_chunk));
    if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(mutex);  // the caller may be between its check and its wait
      done.notify_one();
      return;
    }
    w = claim.load(std::memory_order_acquire);
  }
}

void ThreadPool::Workers::loop() {
  uint32_t seen = 0;
  auto woken = [&] { return stop.load() || generation_of(claim.load(std::memory_order_acquire)) != seen; };
  for (;;) {
    if (!spin_until(woken)) {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, woken);
    }
    if (stop.load()) return;
    seen = generation_of(claim.load(std::memory_order_acquire));
    work(seen);
  }
}

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(std::max(1, num_threads)), fork_count_(ForkRegistry::get().forks.load()) {
  workers_ = start();
}

std::unique_ptr<ThreadPool::Workers> ThreadPool::start() const {
  auto w = std::make_unique<Workers>();
  w->threads.reserve(num_threads_ - 1);
  try {
    for (int i = 1; i < num_threads_; ++i) w->threads.emplace_back(&Workers::loop, w.get());
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

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t)>& fn, size_t grain) {
  if (n == 0) return;
  grain = std::max<size_t>(grain, 1);
  const size_t units = (n + grain - 1) / grain;
  const size_t chunks = std::min({units, num_threads_ * kChunksPerThread, kMaxChunks});
  if (num_threads_ == 1 || chunks == 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<ForkMutex> call(call_mutex_);
  if (solo_calls_ > 0) {
    --solo_calls_;
    fn(0, n);
    return;
  }
  Workers& w = *workers();
  w.job = &fn;
  w.job_n = n;
  w.job_chunk = (units + chunks - 1) / chunks * grain;
  // Rounding the chunk up to whole grains may leave fewer chunks than asked for.
  const auto count = static_cast<uint32_t>((n + w.job_chunk - 1) / w.job_chunk);
  w.finished.store(0, std::memory_order_relaxed);
  const uint32_t generation = generation_of(w.claim.load(std::memory_order_relaxed)) + 1;
  {
    std::lock_guard<std::mutex> lock(w.mutex);
    w.claim.store(claim_word(generation, count, 0), std::memory_order_release);  // publishes the job
  }
  w.wake.notify_all();
  const auto start = std::chrono::steady_clock::now();
  w.work(generation);
  const auto own_end = std::chrono::steady_clock::now();
  auto all_done = [&] { return w.finished.load(std::memory_order_acquire) == count; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(w.mutex);
    w.done.wait(lock, all_done);
  }
  w.job = nullptr;
  const auto waited = std::chrono::steady_clock::now() - own_end;
  if (waited > kStragglerWait && waited > own_end - start) {
    solo_calls_ = next_solo_calls_;
    next_solo_calls_ = std::min(2 * next_solo_calls_, kMaxSoloCalls);
  } else {
    next_solo_calls_ = kMinSoloCalls;
  }
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
