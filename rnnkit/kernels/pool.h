// Worker threads for the inference step (step.cpp): a phase of work (one layer's gates, the
// output layer) is cut into chunks, and the caller and the workers take chunks from a shared
// counter until none is left; the caller returns once every chunk taken is done.
//
// Made for small work on a machine it may share: a phase is tens of microseconds, so workers
// spin between phases (and a while after the last, so that the next call finds them awake), then
// sleep. The caller never waits for a worker that has not started: a chunk belongs to whoever
// takes it first, so with every worker descheduled the caller does all the chunks itself, in the
// same per-chunk code (the results do not depend on who computes what: every output element is
// computed by one chunk, the same way, whatever the number of threads).
//
// The counter packs (phase id, chunk count, next chunk) into one 64-bit word, so a worker that
// takes a ticket learns with it which phase the chunk belongs to and whether it is a real one; a
// phase's function and context sit in one of two slots (a phase's slot is rewritten two phases
// later, which starts only after every chunk of it is done).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>
#include <pthread.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace {   // internal: two builds loaded in one process keep a pool each
namespace rk_pool {

using ChunkFn = void (*)(const void* ctx, int64_t chunk);

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Chunks computed by workers since the library was loaded (the tests check that sharing happens)
inline std::atomic<int64_t>& worker_chunks() {
  static std::atomic<int64_t> n{0};
  return n;
}

// Whether a caller shares its chunks: 0 as the trials decide (below), 1 always, 2 never
inline std::atomic<int64_t>& policy() {
  static std::atomic<int64_t> p{0};
  return p;
}

class Pool {
 public:
  // The process's pool with at least threads - 1 workers, or nullptr (threads <= 1, or no thread
  // could be started). After a fork the child gets a pool of its own (the parent's workers are
  // not in it). Never destroyed: detached workers may still be spinning at exit.
  static Pool* get(int64_t threads) {
    if (threads <= 1) return nullptr;
    std::lock_guard<std::mutex> lk(made_m());
    Pool*& pool = made();
    if (!pool || pool->pid_ != getpid()) pool = new Pool();
    if (!pool->grow(threads - 1)) return nullptr;
    pool->allowed_.store(threads - 1, std::memory_order_relaxed);
    return pool;
  }

  // The process's pool where one was made, else nullptr (starts nothing)
  static Pool* existing() {
    std::lock_guard<std::mutex> lk(made_m());
    Pool* pool = made();
    return pool && pool->pid_ == getpid() ? pool : nullptr;
  }

  // fn(ctx, c) for every c in [0, n), shared with the workers (or alone: see Trial); returns
  // when all are done. A second caller at the same time (another Python thread) runs its
  // chunks alone.
  void run(ChunkFn fn, const void* ctx, int64_t n) {
    std::unique_lock<std::mutex> own(caller_, std::try_to_lock);
    if (!own.owns_lock() || n <= 1 || n >= (1 << 15)) {
      for (int64_t c = 0; c < n; ++c) fn(ctx, c);
      return;
    }
    settle();
    const auto start = std::chrono::steady_clock::now();
    int64_t mine = n;
    if (trial_.shared())
      mine = share(fn, ctx, n);
    else
      for (int64_t c = 0; c < n; ++c) fn(ctx, c);
    const int64_t workers = allowed_.load(std::memory_order_relaxed);
    trial_.record(std::chrono::steady_clock::now() - start, n, n - mine,
                  double(workers) / double(workers + 1));
  }

  // f(owner) with the pool held by this caller and any posted phase finished (its results all
  // written); owner.post(...) inside f starts one. False (f not called) where another caller
  // holds the pool.
  template <typename F> bool exclusive(F f) {
    std::unique_lock<std::mutex> own(caller_, std::try_to_lock);
    if (!own.owns_lock()) return false;
    settle();
    Owner o{this};
    f(o);
    return true;
  }

  // What a caller holding the pool (exclusive) may do: see whether the trials share now, and
  // post a phase that the workers alone compute while the caller goes on (back to Python,
  // say): fn(ctx, c) for c in [0, n); the next run() or exclusive() finishes it first (the
  // caller takes the chunks no worker has taken, then waits for the rest). ctx must stay
  // valid and unchanged until then.
  class Owner {
   public:
    bool sharing() const { return p_->trial_.shared(); }
    void post(ChunkFn fn, const void* ctx, int64_t n) {
      if (n < 1 || n >= (1 << 15)) return;
      p_->start(fn, ctx, n);
      p_->pending_ = n;
    }

   private:
    friend class Pool;
    explicit Owner(Pool* p) : p_(p) {}
    Pool* p_;
  };

 private:
  static Pool*& made() {
    static Pool* pool = nullptr;
    return pool;
  }
  // A forked child has only the thread that forked: a lock another parent thread held at the
  // fork would never be released there, so the child takes a new one (pthread_atfork)
  static std::mutex& made_m() {
    static std::mutex* m = [] {
      pthread_atfork(nullptr, nullptr, [] { made_lock() = new std::mutex(); });
      return made_lock() = new std::mutex();
    }();
    (void)m;
    return *made_lock();
  }
  static std::mutex*& made_lock() {
    static std::mutex* m = nullptr;
    return m;
  }

  // Whether sharing pays is measured, not assumed: with more runnable threads than free cores
  // (a loaded machine) a worker's spinning takes the core the caller needs, and on some
  // machines memory bandwidth, not arithmetic, bounds a step. A cycle of phases runs WINDOW
  // alone, then WINDOW shared (the first quarter of each not timed: workers spin a while
  // before they sleep, and wake up), then `exploit_` phases in whichever took less time per
  // chunk, and starts again. The shared window ends early, lost, once it has taken twice as
  // long as the whole alone window (a trial costs a loaded machine little).
  class Trial {
   public:
    static constexpr int64_t WINDOW = 256, EXPLOIT = 8192;

    bool shared() const {
      const int64_t p = policy().load(std::memory_order_relaxed);
      if (p) return p == 1;
      return (at_ >= WINDOW && at_ < 2 * WINDOW) || (at_ >= 2 * WINDOW && share_wins_);
    }

    // took: the phase's time; chunks: its chunks, theirs: how many the workers took, of a fair
    // share of fair (workers / (workers + 1))
    void record(std::chrono::steady_clock::duration took, int64_t chunks, int64_t theirs,
                double fair) {
      const double us = std::chrono::duration<double, std::micro>(took).count();
      if (at_ < WINDOW) {
        alone_all_us_ += us;
        if (at_ >= WINDOW / 4) alone_us_ += us, alone_chunks_ += chunks;
      } else if (at_ < 2 * WINDOW) {
        shared_all_us_ += us;
        if (at_ >= WINDOW + WINDOW / 4)
          shared_us_ += us, shared_chunks_ += chunks, theirs_ += theirs;
        if (shared_all_us_ > 2 * alone_all_us_) {
          shared_chunks_ = 0;                   // lost
          at_ = 2 * WINDOW - 1;
        }
      }
      if (++at_ == 2 * WINDOW) {
        // Shared wins where it was at least 10% faster per chunk and the workers took at
        // least half their fair share: below that they are not getting a core, and timings on
        // a machine that busy are too noisy to trust. From the second time in a row that
        // alone wins, the next trial comes twice as late (up to 16 cycles later).
        share_wins_ = shared_chunks_ > 0 &&
                      shared_us_ * alone_chunks_ < 0.9 * alone_us_ * shared_chunks_ &&
                      theirs_ >= 0.5 * fair * shared_chunks_;
        losses_ = share_wins_ ? 0 : losses_ + 1;
        exploit_ = losses_ < 2 ? EXPLOIT : std::min(2 * exploit_, 16 * EXPLOIT);
      }
      if (at_ == 2 * WINDOW + exploit_) {
        at_ = 0;
        shared_us_ = alone_us_ = shared_all_us_ = alone_all_us_ = 0;
        shared_chunks_ = alone_chunks_ = theirs_ = 0;
      }
    }

   private:
    int64_t at_ = 0, shared_chunks_ = 0, alone_chunks_ = 0, theirs_ = 0, exploit_ = EXPLOIT,
            losses_ = 0;
    double shared_us_ = 0, alone_us_ = 0, shared_all_us_ = 0, alone_all_us_ = 0;
    bool share_wins_ = false;
  };

  // a new phase of n chunks of fn open to the workers
  void start(ChunkFn fn, const void* ctx, int64_t n) {
    const uint64_t phase = ++phase_;
    Slot& s = slots_[phase & 1];
    s.fn.store(fn, std::memory_order_relaxed);
    s.ctx.store(ctx, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    ticket_.store(pack(phase, n, 0), std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lk(sleep_m_);
      wake_.notify_all();
    }
  }

  // the caller takes the open phase's chunks that are left, then waits until all n are done;
  // returns how many it computed
  int64_t finish(ChunkFn fn, const void* ctx, int64_t n) {
    int64_t mine = 0;
    for (;;) {
      const uint64_t t = ticket_.fetch_add(1, std::memory_order_acq_rel);
      if (next(t) >= count(t)) break;
      fn(ctx, next(t));
      ++mine;
    }
    finished_.fetch_add(mine, std::memory_order_acq_rel);
    for (int64_t spins = 0; finished_.load(std::memory_order_acquire) < n; ++spins) {
      if (spins < (1 << 14))
        relax();
      else
        std::this_thread::yield();       // a worker was descheduled mid-chunk
    }
    return mine;
  }

  // the chunks shared with the workers; returns how many the caller computed
  int64_t share(ChunkFn fn, const void* ctx, int64_t n) {
    start(fn, ctx, n);
    return finish(fn, ctx, n);
  }

  // a posted phase finished (caller holding the pool)
  void settle() {
    if (!pending_) return;
    const Slot& s = slots_[phase_ & 1];
    finish(s.fn.load(std::memory_order_relaxed), s.ctx.load(std::memory_order_relaxed),
           pending_);
    pending_ = 0;
  }

  struct Slot {
    std::atomic<ChunkFn> fn{nullptr};
    std::atomic<const void*> ctx{nullptr};
  };

  static uint64_t pack(uint64_t phase, int64_t n, int64_t next) {
    return (phase << 32) | (static_cast<uint64_t>(n) << 16) | static_cast<uint64_t>(next);
  }
  static int64_t count(uint64_t t) { return static_cast<int64_t>((t >> 16) & 0xffff); }
  static int64_t next(uint64_t t) { return static_cast<int64_t>(t & 0xffff); }

  bool grow(int64_t workers) {
    while (static_cast<int64_t>(started_) < workers) {
      try {
        std::thread(&Pool::work, this, static_cast<int64_t>(started_)).detach();
      } catch (...) {
        return started_ > 0;
      }
      ++started_;
    }
    return true;
  }

  void work(int64_t index) {
    using clock = std::chrono::steady_clock;
    auto idle_since = clock::now();
    for (int64_t spins = 0;; ++spins) {
      const uint64_t t = ticket_.load(std::memory_order_acquire);
      if (next(t) < count(t) && index < allowed_.load(std::memory_order_relaxed)) {
        const uint64_t mine = ticket_.fetch_add(1, std::memory_order_acq_rel);
        if (next(mine) < count(mine)) {
          const Slot& s = slots_[(mine >> 32) & 1];
          s.fn.load(std::memory_order_relaxed)(s.ctx.load(std::memory_order_relaxed), next(mine));
          worker_chunks().fetch_add(1, std::memory_order_relaxed);
          finished_.fetch_add(1, std::memory_order_acq_rel);
        }
        idle_since = clock::now();
        spins = 0;
        continue;
      }
      relax();
      if ((spins & 255) != 255 || clock::now() - idle_since < std::chrono::microseconds(300))
        continue;
      std::unique_lock<std::mutex> lk(sleep_m_);   // idle a while: sleep until a new phase
      sleeping_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lk, [&] { return ticket_.load(std::memory_order_seq_cst) != t; });
      sleeping_.fetch_sub(1, std::memory_order_seq_cst);
      idle_since = clock::now();
      spins = 0;
    }
  }

  const pid_t pid_ = getpid();
  std::mutex caller_;                    // one caller at a time shares the workers
  uint64_t phase_ = 0;                   // phase_, trial_, pending_: the caller holding caller_
  int64_t pending_ = 0;                  // chunks of a posted phase not yet settled (0: none)
  Trial trial_;
  Slot slots_[2];
  alignas(64) std::atomic<uint64_t> ticket_{0};
  alignas(64) std::atomic<int64_t> finished_{0};
  alignas(64) std::atomic<int64_t> sleeping_{0};
  std::atomic<int64_t> allowed_{0};      // workers with index below this take chunks
  int64_t started_ = 0;
  std::mutex sleep_m_;
  std::condition_variable wake_;
};

}  // namespace rk_pool
}  // namespace
