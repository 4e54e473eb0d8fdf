#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
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

// Measured wake-up latency of a sleeping worker, in nanoseconds: a moving
// average over the calls that used threads (the time from posting a call to
// a worker joining it). Starts at a typical Linux value until measured.
std::atomic<double> g_wake_ns{30000.0};

void note_wake(std::chrono::steady_clock::duration d) {
  const double ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  const double old = g_wake_ns.load(std::memory_order_relaxed);
  g_wake_ns.store(0.75 * old + 0.25 * ns, std::memory_order_relaxed);
}

// One parallel call. Lives on the caller's stack; workers reach it through
// Pool::job_ only while the caller has it published, and the caller does not
// return before every worker that took it (users) has left it.
struct Job {
  const std::function<void(size_t)>* task;
  size_t count;
  std::atomic<size_t> next{0};
  size_t users = 0;  // workers inside drain(); guarded by Pool::mutex_
  std::exception_ptr error;  // guarded by Pool::mutex_
};

class Pool {
 public:
  // Tasks are claimed one at a time from a shared counter, by the caller and
  // by whichever workers are awake, so the split adapts to when each thread
  // actually starts: a worker that wakes late (a sleeping thread can take
  // 100+ us to be scheduled) finds the tasks already taken and the caller
  // never waits for it. It waits only for tasks that are running.
  void run(size_t count, const std::function<void(size_t)>& task, int threads) {
    std::unique_lock<std::mutex> call(call_mutex_, std::try_to_lock);
    const size_t helpers = std::min<size_t>(static_cast<size_t>(threads) - 1, count - 1);
    if (!call.owns_lock() || helpers == 0) {
      for (size_t i = 0; i < count; ++i) task(i);
      return;
    }
    Job job;
    job.task = &task;
    job.count = count;
    {
      std::lock_guard<std::mutex> lk(mutex_);
      while (workers_.size() < helpers) {
        const size_t index = workers_.size();
        workers_.emplace_back([this, index] { work(index); });
      }
      posted_ = std::chrono::steady_clock::now();
      job_ = &job;
      participants_ = helpers;
      ++generation_;
    }
    wake_.notify_all();
    drain(job);
    std::unique_lock<std::mutex> lk(mutex_);
    job_ = nullptr;  // every task is claimed: workers still asleep have nothing to join
    done_.wait(lk, [&] { return job.users == 0; });
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void drain(Job& job) {
    for (;;) {
      const size_t i = job.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= job.count) return;
      try {
        (*job.task)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mutex_);
        if (!job.error) job.error = std::current_exception();
      }
    }
  }

  void work(size_t index) {
    std::unique_lock<std::mutex> lk(mutex_);
    size_t seen = 0;
    for (;;) {
      wake_.wait(lk, [&] { return generation_ != seen && index < participants_; });
      seen = generation_;
      // Late wake-ups count too: they are what the threshold must avoid.
      note_wake(std::chrono::steady_clock::now() - posted_);
      Job* job = job_;
      if (!job) continue;  // that call is over
      ++job->users;
      lk.unlock();
      drain(*job);
      lk.lock();
      if (--job->users == 0) done_.notify_all();
    }
  }

  std::mutex call_mutex_;  // one parallel call at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  std::chrono::steady_clock::time_point posted_;  // when the current generation was posted
  size_t participants_ = 0, generation_ = 0;
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

double wake_latency_ns() { return g_wake_ns.load(std::memory_order_relaxed); }

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
