// A fixed pool of worker threads sized to the machine's cores. Kernels split work with
// parallelFor; the calling thread takes part, so a pool of N threads uses N cores in total.
#pragma once
#include <cstdint>
#include <functional>

namespace kiln {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0 means hardware_concurrency()
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn(begin, end) over [0, n) in chunks of at least `grain` items, in parallel, and waits.
  // Runs inline when n is small or when called from inside a pool task (no nested parallelism).
  void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool used by kernels unless a context provides its own.
  static ThreadPool& global();

 private:
  struct Impl;
  Impl* impl_;
  int threads_;
};

}  // namespace kiln
