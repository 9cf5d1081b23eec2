#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

namespace {
thread_local bool tInsidePool = false;
}

// One job at a time: parallelFor publishes a job, workers and the caller grab chunks from a shared
// counter until none remain, then the caller waits for stragglers. Concurrent callers (several
// execution contexts) serialise on jobMutex; each still gets the whole pool for its job.
struct ThreadPool::Impl {
  std::vector<std::thread> workers;
  std::mutex jobMutex;  // one job at a time
  std::mutex m;
  std::condition_variable wake, done;
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0, chunk = 1;
  std::atomic<int64_t> next{0};
  int active = 0;
  uint64_t generation = 0;
  bool stop = false;

  void work() {
    for (;;) {
      int64_t begin = next.fetch_add(chunk);
      if (begin >= n) return;
      (*fn)(begin, std::min(n, begin + chunk));
    }
  }

  void loop() {
    tInsidePool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m);
        wake.wait(lock, [&] { return stop || generation != seen; });
        if (stop) return;
        seen = generation;
        active++;
      }
      work();
      {
        std::lock_guard<std::mutex> lock(m);
        if (--active == 0) done.notify_all();
      }
    }
  }
};

ThreadPool::ThreadPool(int threads) : impl_(new Impl) {
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  threads_ = threads;
  for (int i = 0; i < threads - 1; i++) impl_->workers.emplace_back([this] { impl_->loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->stop = true;
  }
  impl_->wake.notify_all();
  for (auto& t : impl_->workers) t.join();
  delete impl_;
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (threads_ == 1 || n <= grain || tInsidePool) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> job(impl_->jobMutex);
  // About 4 chunks per thread balances uneven work without much scheduling overhead.
  int64_t chunk = std::max(grain, (n + threads_ * 4 - 1) / (threads_ * 4));
  {
    // A worker that woke late for an earlier job may still be inside work(); job fields must not
    // change under it.
    std::unique_lock<std::mutex> lock(impl_->m);
    impl_->done.wait(lock, [&] { return impl_->active == 0; });
    impl_->fn = &fn;
    impl_->n = n;
    impl_->chunk = chunk;
    impl_->next.store(0);
    impl_->generation++;
  }
  impl_->wake.notify_all();
  tInsidePool = true;
  impl_->work();
  tInsidePool = false;
  std::unique_lock<std::mutex> lock(impl_->m);
  impl_->done.wait(lock, [&] { return impl_->active == 0 && impl_->next.load() >= n; });
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(0);
  return pool;
}

}  // namespace kiln
