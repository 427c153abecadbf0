// One time step of a whole unidirectional stack (LSTM, GRU, Elman RNN or MGU), for inference: every
// layer's two GEMMs (torch's own BLAS, called on the weights as they lie: W (G·H, I) row-major)
// and its fused element-wise step, in one call from Python. No autograd, no workspace; the only
// memory is thread-local scratch for the gate pre-activations.
//
// The maths is the cells' own (rnnkit/cells/lstm.py, gru.py, rnn.py, mgu.py) with the activations of
// common.h, as the training kernels: the tests hold this step to the layer's forward.
//
//   LSTM: a = x W_ih^T + b_ih + h W_hh^T + b_hh; i f g o; c' = f c + i g; h' = o tanh(c')
//   GRU:  gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh; r z = σ(gi + gh);
//         n = tanh(gi^n + r gh^n); h' = n + z (h - n)
//   RNN:  h' = f(x W_ih^T + b_ih + h W_hh^T + b_hh), f = tanh or relu
//   MGU:  f = σ(x W_if^T + b_if + h U_f^T + b_hf); n = tanh(x W_in^T + b_in + (f h) U_n^T + b_hn);
//         h' = (n - h) f + h
//
// Here: the stack's step, the language model's per-token call (with layer 0's product computed
// ahead), the token table and the sampling loop. rows.h: the dot products of weight rows;
// step_units.h: a layer by chunks of units and each cell's element-wise step; pick.h: a draw.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#include "declare.h"
#include "pick.h"
#include "pool.h"
#include "rows.h"
#include "step_units.h"

// w: per layer w_ih, w_hh, b_ih, b_hh (biases may be null). x (B, I); h0, h1 (L, B, H); c0, c1
// (L, B, H) for the LSTM (else null). h1/c1 must not overlap h0/c0 or x.
// A language model's ends, optional: with ids (B) the input rows are emb's rows ids[r] (emb
// (n_emb, I)) instead of x's; with w_out (V, H) the logits (B, V) = h_top W_out^T + b_out. An id
// outside [0, n_emb) computes nothing and sets *status to 1 + its row (else 0). Batches of up to
// small_b rows multiply in the loop of gemm_nt, larger ones in the BLAS GEMM. With ids, `table`
// (n_emb, G), where given, holds layer 0's input part b_ih + emb W_ih^T for every token (see
// input_table): the step copies its row instead of reading W_ih. threads > 1: up to small_b rows,
// each layer and the output layer are shared with the workers of pool.h (the same results).
#define RK_ARGS_stack_step(X)                                                                  \
  X(addr, gemm) X(i64, kind) X(i64, L) X(i64, B) X(i64, I) X(i64, H) X(addr, w) X(opt, x)      \
  X(in, h0) X(opt, c0) X(out, h1) X(optout, c1) X(idx, ids) X(opt, emb) X(i64, n_emb)          \
  X(opt, w_out) X(opt, b_out) X(i64, V) X(optout, logits) X(addr, status) X(i64, small_b)      \
  X(opt, table) X(i64, threads)
template <typename T> struct stack_step_args;
template <typename T> static void stack_step_impl(const stack_step_args<T>& a, const T* rec0);

RK_KERNEL(stack_step) { stack_step_impl<T>(a, nullptr); }

// rec0 (B, G), where given: layer 0's h W_hh^T, computed ahead (lm_step's speculation, below)
template <typename T> static void stack_step_impl(const stack_step_args<T>& a, const T* rec0) {
  void* gemm = a.gemm;
  const int64_t kind = a.kind, L = a.L, B = a.B, I = a.I, H = a.H, small_b = a.small_b;
  const int64_t n_emb = a.n_emb, V = a.V;
  const void* const* w = static_cast<const void* const*>(a.w);
  const T *x = a.x, *h0 = a.h0, *c0 = a.c0, *emb = a.emb, *w_out = a.w_out, *b_out = a.b_out;
  const T* table = a.table;
  T *h1 = a.h1, *c1 = a.c1, *logits = a.logits;
  const int64_t* ids = a.ids;
  int64_t* status = static_cast<int64_t*>(a.status);
  const int64_t G = gates(kind) * H;
  if (status) *status = 0;
  if (ids && table) {
    for (int64_t r = 0; r < B; ++r)
      if (ids[r] < 0 || ids[r] >= n_emb) {
        if (status) *status = 1 + r;
        return;
      }
  } else if (ids) {
    T* xb = scratch<T, 8>(B * I).data();
    for (int64_t r = 0; r < B; ++r) {
      if (ids[r] < 0 || ids[r] >= n_emb) {
        if (status) *status = 1 + r;
        return;
      }
      std::memcpy(xb + r * I, emb + ids[r] * I, I * sizeof(T));
    }
    x = xb;
  }
  T* acc = scratch<T, 6>(B * G).data();
  T* gh = scratch<T, 7>(kind == GRU ? B * G : kind == MGU ? B * H : 1).data();   // MGU: f ⊙ h
  const bool small = B <= small_b;
  rk_pool::Pool* pool = small ? rk_pool::Pool::get(a.threads) : nullptr;
  const int64_t units = pool ? std::max<int64_t>(8, (H + 4 * a.threads - 1) / (4 * a.threads)) : H;
  const T* in = x;
  int64_t in_size = I;
  for (int64_t l = 0; l < L; ++l) {
    const T* w_ih = static_cast<const T*>(w[4 * l]);
    const T* w_hh = static_cast<const T*>(w[4 * l + 1]);
    const T* b_ih = static_cast<const T*>(w[4 * l + 2]);
    const T* b_hh = static_cast<const T*>(w[4 * l + 3]);
    const T* hp = h0 + l * B * H;
    T* h = h1 + l * B * H;
    const T* cp = kind == LSTM ? c0 + l * B * H : nullptr;
    T* c = kind == LSTM ? c1 + l * B * H : nullptr;
    const bool from_table = l == 0 && ids && table;
    if (small) {                           // by chunks of units, shared with the pool's workers
      const UnitsJob<T> job{kind, B, G, H, in_size, units, in, w_ih, w_hh, b_ih, b_hh, hp, cp,
                            from_table ? table : nullptr, l == 0 ? rec0 : nullptr,
                            from_table ? ids : nullptr, acc, gh, h, c};
      if (kind == MGU) {
        run_chunks(pool, &mgu_gate_chunk<T>, &job, (H + units - 1) / units);
        run_chunks(pool, &mgu_new_chunk<T>, &job, (H + units - 1) / units);
      } else {
        run_chunks(pool, &units_chunk<T>, &job, (H + units - 1) / units);
      }
    } else if (kind == MGU) {              // the same two halves through the BLAS GEMM
      if (from_table) {
        for (int64_t r = 0; r < B; ++r) std::memcpy(acc + r * G, table + ids[r] * G, G * sizeof(T));
      } else {
        fill_bias(B, G, b_ih, acc);
        gemm_nt<T>(gemm, 0, B, G, in_size, in, in_size, w_ih, acc);                   // + x W_ih^T
      }
      add_bias(B, G, b_hh, acc);
      T* t = scratch<T, 14>(B * H).data();
      std::memset(t, 0, B * H * sizeof(T));
      gemm_nt<T>(gemm, 0, B, H, H, hp, H, w_hh, t);                                   // h U_f^T
      for (int64_t r = 0; r < B; ++r)
        for (int64_t j = 0; j < H; ++j) {
          const T f = sigmoid_(acc[r * G + j] + t[r * H + j]);
          acc[r * G + j] = f;
          gh[r * H + j] = f * hp[r * H + j];
        }
      std::memset(t, 0, B * H * sizeof(T));
      gemm_nt<T>(gemm, 0, B, H, H, gh, H, w_hh + H * H, t);                           // fh U_n^T
      for (int64_t r = 0; r < B; ++r) {
        for (int64_t j = 0; j < H; ++j) acc[r * G + H + j] += t[r * H + j];
        mgu_units(H, 0, H, acc + r * G, hp + r * H, h + r * H);
      }
    } else {

      if (from_table) {
        for (int64_t r = 0; r < B; ++r) std::memcpy(acc + r * G, table + ids[r] * G, G * sizeof(T));
      } else {
        fill_bias(B, G, b_ih, acc);
        gemm_nt<T>(gemm, 0, B, G, in_size, in, in_size, w_ih, acc);                   // + x W_ih^T
      }
      if (kind == GRU) {
        fill_bias(B, G, b_hh, gh);
        gemm_nt<T>(gemm, 0, B, G, H, hp, H, w_hh, gh);                               // h W_hh^T + b_hh
      } else {
        add_bias(B, G, b_hh, acc);
        gemm_nt<T>(gemm, 0, B, G, H, hp, H, w_hh, acc);                                // + h W_hh^T
      }
      for (int64_t r = 0; r < B; ++r)
        cell_units(kind, H, 0, H, acc + r * G, gh + r * G, hp + r * H, cp ? cp + r * H : nullptr,
                   c ? c + r * H : nullptr, h + r * H);
    }
    in = h;
    in_size = H;
  }
  if (w_out) {
    if (small) {
      const int64_t rows = pool ? std::max<int64_t>(16, (V + 4 * a.threads - 1) / (4 * a.threads)) : V;
      const OutJob<T> job{B, V, H, rows, in, w_out, b_out, logits};
      run_chunks(pool, &out_chunk<T>, &job, (V + rows - 1) / rows);
    } else {
      fill_bias(B, V, b_out, logits);
      gemm_nt<T>(gemm, 0, B, V, H, in, H, w_out, logits);                            // + h W_out^T
    }
  }
}

// A language model's per-token step (rnnkit/layers/fast_step.py's lm_step) in a short call: the
// arguments that stay from token to token lie in `fixed`, stack_step_args' own layout (the
// declared arguments in order, 8 bytes each, written once from Python); the rest come here.
static_assert(sizeof(stack_step_args<float>) == 23 * 8 && sizeof(stack_step_args<double>) == 23 * 8,
              "lm_step's fixed arguments: 23 slots of 8 bytes");
static_assert(std::is_standard_layout<stack_step_args<float>>::value, "a plain struct");

// Speculation: a language model's next step most likely continues from the state this one
// returns, so once a step is done the pool's workers compute layer 0's h W_hh^T for it while
// the caller is back in Python; the next step takes those products (the same dots, so the
// same bits) where it is that continuation: the same model (key, a number Python gives each
// plan), W_hh of layer 0 unchanged (version, its tensor's version counter), the same batch and
// layer 0's h equal byte for byte to the one they were computed from. Only while the pool's
// trials share (a machine with a free core); a step without a match computes them itself.
template <typename T> struct Spec {
  int64_t key = -1, version = -1, B = 0, H = 0, G = 0;
  const T* w = nullptr;                    // W_hh of layer 0 (G, H)
  std::vector<T> h, rec;                   // layer 0's h (B, H) and h W_hh^T (B, G)
};
constexpr int64_t SPEC_ROWS = 64;          // weight rows per chunk

inline std::atomic<int64_t>& spec_hits() {   // steps that took products computed ahead
  static std::atomic<int64_t> n{0};
  return n;
}

template <typename T> Spec<T>*& spec_ptr() {
  static Spec<T>* s = nullptr;
  return s;
}

// Never destroyed: a worker may be reading it. A forked child starts from none: the parent's
// may be half written by workers that are not in the child
template <typename T> Spec<T>& spec() {
  static Spec<T>* s = [] {
    pthread_atfork(nullptr, nullptr, [] { spec_ptr<T>() = new Spec<T>(); });
    return spec_ptr<T>() = new Spec<T>();
  }();
  (void)s;
  return *spec_ptr<T>();
}

template <typename T> void spec_chunk(const void* p, int64_t chunk) {
  const Spec<T>& S = *static_cast<const Spec<T>*>(p);
  const int64_t i1 = std::min(S.G, (chunk + 1) * SPEC_ROWS);
  T d[4];
  for (int64_t i = chunk * SPEC_ROWS; i < i1; i += 4) {
    const int64_t m = std::min<int64_t>(4, i1 - i);
    for (int64_t r = 0; r < S.B; ++r) {
      dots_n(S.w + i * S.H, S.H, S.h.data() + r * S.H, m, d);
      std::memcpy(const_cast<T*>(S.rec.data()) + r * S.G + i, d, m * sizeof(T));
    }
  }
}

template <typename T>
void lm_step_call(const stack_step_args<T>* fixed, int64_t B, const T* h0, const T* c0, T* h1,
                  T* c1, const int64_t* ids, T* logits, int64_t* status, int64_t threads,
                  int64_t key, int64_t version) {
  stack_step_args<T> a = *fixed;
  a.B = B, a.h0 = h0, a.c0 = c0, a.h1 = h1, a.c1 = c1, a.ids = ids, a.logits = logits;
  a.status = status, a.threads = threads;
  const int64_t H = a.H, G = gates(a.kind) * H;
  rk_pool::Pool* pool =          // (MGU: layer 0's second product needs this step's f first)
      B <= a.small_b && key >= 0 && a.kind != MGU ? rk_pool::Pool::get(threads) : nullptr;
  std::vector<T>& rec = scratch<T, 13>(B * G);
  bool ahead = false;
  Spec<T>& S = spec<T>();
  if (pool)
    pool->exclusive([&](rk_pool::Pool::Owner&) {          // S is the pool holder's alone
      ahead = S.key == key && S.version == version && S.B == B && S.H == H &&
              std::memcmp(S.h.data(), h0, B * H * sizeof(T)) == 0;
      if (ahead) {
        std::memcpy(rec.data(), S.rec.data(), B * G * sizeof(T));
        spec_hits().fetch_add(1, std::memory_order_relaxed);
      }
      S.key = -1;
    });
  stack_step_impl<T>(a, ahead ? rec.data() : nullptr);
  if (pool && !*status)
    pool->exclusive([&](rk_pool::Pool::Owner& o) {
      if (!o.sharing()) return;
      S.key = key, S.version = version, S.B = B, S.H = H, S.G = G;
      S.w = static_cast<const T*>(static_cast<const void* const*>(a.w)[1]);
      S.h.assign(h1, h1 + B * H);
      S.rec.resize(B * G);
      o.post(&spec_chunk<T>, &S, (G + SPEC_ROWS - 1) / SPEC_ROWS);
    });
}

// key: a number for the model (-1: no speculation), version: W_hh of layer 0's version counter
extern "C" void rk_lm_step_f32(const stack_step_args<float>* fixed, int64_t B, const float* h0,
                               const float* c0, float* h1, float* c1, const int64_t* ids,
                               float* logits, int64_t* status, int64_t threads, int64_t key,
                               int64_t version) {
  lm_step_call<float>(fixed, B, h0, c0, h1, c1, ids, logits, status, threads, key, version);
}
extern "C" void rk_lm_step_f64(const stack_step_args<double>* fixed, int64_t B, const double* h0,
                               const double* c0, double* h1, double* c1, const int64_t* ids,
                               double* logits, int64_t* status, int64_t threads, int64_t key,
                               int64_t version) {
  lm_step_call<double>(fixed, B, h0, c0, h1, c1, ids, logits, status, threads, key, version);
}

// How many chunks of stack steps the pool's workers have computed in this process
extern "C" int64_t rk_pool_worker_chunks() { return rk_pool::worker_chunks().load(); }
// Waits until products posted ahead are all computed (before the weights they read may go)
extern "C" void rk_lm_settle() {
  if (rk_pool::Pool* pool = rk_pool::Pool::existing())
    while (!pool->exclusive([](rk_pool::Pool::Owner&) {})) std::this_thread::yield();
}
// How many language-model steps took layer 0's product computed ahead (lm_step_call)
extern "C" int64_t rk_lm_spec_hits() { return spec_hits().load(); }
// Sharing policy (pool.h): 0 measured, 1 always, 2 never; returns the previous one
extern "C" int64_t rk_pool_policy(int64_t p) { return rk_pool::policy().exchange(p); }

// table (n_emb, G) = b_ih + emb W_ih^T of layer 0, each row by the same dot products as a step
// at small batch computes it (so a step from the table equals one without, bit for bit)
#define RK_ARGS_input_table(X) \
  X(i64, kind) X(i64, I) X(i64, H) X(addr, w) X(in, emb) X(i64, n_emb) X(out, table)
RK_KERNEL(input_table) {
  const int64_t G = gates(a.kind) * a.H;
  const void* const* w = static_cast<const void* const*>(a.w);
  fill_bias(a.n_emb, G, static_cast<const T*>(w[2]), a.table);
  gemm_nt<T>(nullptr, a.n_emb, a.n_emb, G, a.I, a.emb, a.I, static_cast<const T*>(w[0]), a.table);
}

// n steps of sampling from a language model, as rnnkit/decode/sampling.py's sample loop does
// them: per step a token for every row from its logits (pick_row with u[t·B + r]) into out
// (n, B), then, unless every row is done (has emitted stop_id, where stop_id >= 0), the stack's
// step from those tokens (stack_step with ids and the LM's ends): logits (B, V), h (L, B, H) and
// c (the LSTM's, else null) are read and replaced in place; done (B) likewise. status[0]: the
// steps taken (n, or fewer where every row stopped); status[1]: 0, or what stack_step reported.
#define RK_ARGS_lm_sample(X)                                                                   \
  X(addr, gemm) X(i64, kind) X(i64, L) X(i64, B) X(i64, I) X(i64, H) X(addr, w) X(in, emb)     \
  X(i64, n_emb) X(in, w_out) X(opt, b_out) X(i64, V) X(opt, table) X(i64, n) X(din, u)         \
  X(f64, temperature) X(i64, top_k) X(f64, top_p) X(i64, stop_id) X(out, logits) X(out, h)     \
  X(optout, c) X(iout, done) X(iout, out) X(addr, status) X(i64, small_b)     \
  X(i64, threads)
RK_KERNEL(lm_sample) {
  const int64_t L = a.L, B = a.B, H = a.H, V = a.V, n = a.n, stop_id = a.stop_id;
  const double* u = a.u;
  const double temperature = a.temperature, top_p = a.top_p;
  const int64_t top_k = a.top_k;
  T *logits = a.logits, *h = a.h, *c = a.c;
  int64_t *done = a.done, *out = a.out, *status = static_cast<int64_t*>(a.status);
  stack_step_args<T> step{};                            // the stack's step from the drawn ids
  step.gemm = a.gemm, step.kind = a.kind, step.L = L, step.B = B, step.I = a.I, step.H = H;
  step.w = a.w, step.emb = a.emb, step.n_emb = a.n_emb, step.w_out = a.w_out;
  step.b_out = a.b_out, step.V = V, step.logits = logits, step.status = status + 1;
  step.small_b = a.small_b, step.threads = a.threads, step.table = a.table, step.h0 = h, step.c0 = c;
  T* h1 = step.h1 = scratch<T, 9>(L * B * H).data();
  T* c1 = scratch<T, 10>(c ? L * B * H : 1).data();
  step.c1 = c ? c1 : nullptr;
  T* work = scratch<T, 11>(2 * V).data();
  int64_t* order = scratch<int64_t, 12>(V).data();
  status[0] = status[1] = 0;
  for (int64_t t = 0; t < n; ++t) {
    int64_t* ids = out + t * B;
    bool all_done = stop_id >= 0;
    for (int64_t r = 0; r < B; ++r) {
      ids[r] = pick_row(V, logits + r * V, temperature, top_k, top_p, u[t * B + r], work, order);
      if (stop_id >= 0) {
        done[r] = done[r] || ids[r] == stop_id;
        all_done = all_done && done[r];
      }
    }
    status[0] = t + 1;
    if (all_done) return;
    step.ids = ids;
    stack_step<T>(step);
    if (status[1]) return;
    std::memcpy(h, h1, L * B * H * sizeof(T));
    if (c) std::memcpy(c, c1, L * B * H * sizeof(T));
  }
}
