#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define SSM_HAVE_PTHREAD_ATFORK 1
#endif

namespace ssm {
namespace {

class Pool {
 public:
  void run(size_t count, const std::function<void(size_t)>& task, int threads) {
    std::unique_lock<std::mutex> job(job_mutex_, std::try_to_lock);
    const size_t helpers = std::min<size_t>(static_cast<size_t>(threads) - 1, count - 1);
    if (!job.owns_lock() || helpers == 0) {
      for (size_t i = 0; i < count; ++i) task(i);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mutex_);
      while (workers_.size() < helpers) {
        const size_t index = workers_.size();
        workers_.emplace_back([this, index] { work(index); });
      }
      task_ = &task;
      count_ = count;
      next_.store(0, std::memory_order_relaxed);
      participants_ = helpers;
      pending_ = helpers;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lk(mutex_);
    done_.wait(lk, [this] { return pending_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void drain() {
    for (;;) {
      const size_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= count_) return;
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void work(size_t index) {
    std::unique_lock<std::mutex> lk(mutex_);
    size_t seen = 0;
    for (;;) {
      wake_.wait(lk, [&] { return generation_ != seen && index < participants_; });
      seen = generation_;
      lk.unlock();
      drain();
      lk.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex job_mutex_;  // one parallel call at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(size_t)>* task_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  size_t participants_ = 0, pending_ = 0, generation_ = 0;
  std::exception_ptr error_;
};

// Leaked on purpose: workers sleep in wait() until the process exits, and
// joining them from a static destructor during interpreter shutdown is a
// classic deadlock.
Pool* g_pool = new Pool;
std::atomic<int> g_threads{0};

#if defined(SSM_HAVE_PTHREAD_ATFORK)
// A forked child has none of the parent's worker threads and may have
// inherited locked mutexes: give it a fresh pool (the old one is leaked).
void reset_after_fork() { g_pool = new Pool; }
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, &reset_after_fork);
#endif

}  // namespace

int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = default_num_threads();
    int expected = 0;
    g_threads.compare_exchange_strong(expected, n);
    n = g_threads.load(std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) { g_threads.store(n < 1 ? 1 : n, std::memory_order_relaxed); }

void parallel_for(size_t count, const std::function<void(size_t)>& task) {
  if (count == 0) return;
  const int threads = get_num_threads();
  if (threads <= 1 || count == 1) {
    for (size_t i = 0; i < count; ++i) task(i);
    return;
  }
  g_pool->run(count, task, threads);
}

}  // namespace ssm

// Plain C entry points that threadpoolctl's controller for simdsoftmax
// (python/simdsoftmax/_threadpoolctl.py) finds with dlsym in the loaded
// extension, the way it drives OpenBLAS or OpenMP runtimes.
#if defined(_WIN32)
#define SSM_C_EXPORT extern "C" __declspec(dllexport)
#else
#define SSM_C_EXPORT extern "C" __attribute__((visibility("default")))
#endif
SSM_C_EXPORT int simdsoftmax_get_num_threads(void) { return ssm::get_num_threads(); }
SSM_C_EXPORT void simdsoftmax_set_num_threads(int n) { ssm::set_num_threads(n); }
