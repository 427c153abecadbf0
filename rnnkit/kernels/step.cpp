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
#include <algorithm>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <functional>
#include <limits>
#include <type_traits>

#include "declare.h"
#include "pool.h"

namespace {

enum Kind : int64_t { LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3, MGU = 4 };

// gate rows per hidden unit
inline int64_t gates(int64_t kind) { return kind == LSTM ? 4 : kind == GRU ? 3 : kind == MGU ? 2 : 1; }

// out[q] = Σ_j W[q·k + j] x[j] for R rows of W (row-major, k columns): 16 lanes per row (lane l
// sums the j ≡ l mod 16 below the last whole 16), the lanes added as a tree (8, 4, 2, 1), then
// the remaining j in order. A row's sum is the same whatever R, so chunks of any size agree.
// R = 4 keeps eight independent vector sums in flight (a row alone waits on its adds).
template <int R, typename T>
inline void dots(const T* RK W, int64_t k, const T* RK x, T* RK out) {
  T acc[R][L] = {};
  int64_t j = 0;
  for (; j + L <= k; j += L)
    for (int q = 0; q < R; ++q)
      for (int l = 0; l < L; ++l) acc[q][l] += W[q * k + j + l] * x[j + l];
  for (int q = 0; q < R; ++q) {
    T* a = acc[q];
    for (int w = L / 2; w > 0; w /= 2)
      for (int l = 0; l < w; ++l) a[l] += a[l + w];
    T s = a[0];
    for (int64_t i = j; i < k; ++i) s += W[q * k + i] * x[i];
    out[q] = s;
  }
}

#if defined(__AVX2__) && defined(__FMA__)
// float with AVX2: the same sums in the same order, written out (the compiler's version of the
// loop above kept its sums in memory once inlined). Lanes 0-7 and 8-15 are two registers. The
// next four rows are prefetched as these are read (a prefetch past the end does not fault):
// the weights come from L3 at batch 1, ~10% faster so on a 3 MB stack.
inline __m128 lanes_to_4(__m256 a0, __m256 a1) {            // tree steps 8 and 4
  const __m256 v = _mm256_add_ps(a0, a1);
  return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
}

inline float tail(const float* RK w, const float* RK x, int64_t j, int64_t k, float s) {
  for (; j < k; ++j) s += w[j] * x[j];
  return s;
}

template <> inline void dots<4, float>(const float* RK W, int64_t k, const float* RK x,
                                       float* RK out) {
  __m256 a[4][2];
  for (int q = 0; q < 4; ++q) a[q][0] = a[q][1] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + L <= k; j += L) {
    const __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
    for (int q = 0; q < 4; ++q) {
      _mm_prefetch(reinterpret_cast<const char*>(W + (q + 4) * k + j), _MM_HINT_T0);
      a[q][0] = _mm256_fmadd_ps(_mm256_loadu_ps(W + q * k + j), x0, a[q][0]);
      a[q][1] = _mm256_fmadd_ps(_mm256_loadu_ps(W + q * k + j + 8), x1, a[q][1]);
    }
  }
  __m128 b0 = lanes_to_4(a[0][0], a[0][1]), b1 = lanes_to_4(a[1][0], a[1][1]);
  __m128 b2 = lanes_to_4(a[2][0], a[2][1]), b3 = lanes_to_4(a[3][0], a[3][1]);
  _MM_TRANSPOSE4_PS(b0, b1, b2, b3);                        // b_l = lane l of the four rows
  const __m128 d = _mm_add_ps(_mm_add_ps(b0, b2), _mm_add_ps(b1, b3));   // steps 2 and 1
  _mm_storeu_ps(out, d);
  if (j < k)
    for (int q = 0; q < 4; ++q) out[q] = tail(W + q * k, x, j, k, out[q]);
}

template <> inline void dots<1, float>(const float* RK W, int64_t k, const float* RK x,
                                       float* RK out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + L <= k; j += L) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(W + j), _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(W + j + 8), _mm256_loadu_ps(x + j + 8), a1);
  }
  alignas(16) float b[4];
  _mm_store_ps(b, lanes_to_4(a0, a1));
  *out = tail(W, x, j, k, (b[0] + b[2]) + (b[1] + b[3]));
}
#endif

// dots of n consecutive rows of W (by 4, then one at a time)
template <typename T>
inline void dots_n(const T* W, int64_t k, const T* x, int64_t n, T* out) {
  int64_t q = 0;
  for (; q + 4 <= n; q += 4) dots<4>(W + q * k, k, x, out + q);
  for (; q < n; ++q) dots<1>(W + q * k, k, x, out + q);
}

// Row-major C (b × n) += A (b × k, row stride lda) · W^T, W (n × k) row-major. Up to small_b rows
// the dots above (each weight row read once per row of A), above, the GEMM: in column-major
// terms C^T = W A^T, i.e. GEMM('T', 'N') on W's memory.
template <typename T>
inline void gemm_nt(void* g, int64_t small_b, int64_t b, int64_t n, int64_t k, const T* A,
                    int64_t lda, const T* W, T* C) {
  if (b <= small_b) {
    T d[4];
    for (int64_t i = 0; i < n; i += 4) {
      const int64_t m = std::min<int64_t>(4, n - i);
      for (int64_t r = 0; r < b; ++r) {
        dots_n(W + i * k, k, A + r * lda, m, d);
        for (int64_t q = 0; q < m; ++q) C[r * n + i + q] += d[q];
      }
    }
    return;
  }
  const char tr = 'T', no = 'N';
  const int m_ = static_cast<int>(n), n_ = static_cast<int>(b), k_ = static_cast<int>(k);
  const int la = static_cast<int>(k), lb = static_cast<int>(lda), lc = static_cast<int>(n);
  const T one = 1;
  reinterpret_cast<gemm_fn<T>>(g)(&tr, &no, &m_, &n_, &k_, &one, W, &la, A, &lb, &one, C, &lc);
}

// a (b × G) = bias broadcast over rows (zeros where there is none)
template <typename T> inline void fill_bias(int64_t b, int64_t G, const T* bias, T* a) {
  for (int64_t r = 0; r < b; ++r) {
    if (bias)
      std::memcpy(a + r * G, bias, G * sizeof(T));
    else
      std::memset(a + r * G, 0, G * sizeof(T));
  }
}

template <typename T> inline void add_bias(int64_t b, int64_t G, const T* bias, T* a) {
  if (!bias) return;
  for (int64_t r = 0; r < b; ++r) add_rows(G, bias, a + r * G);
}

// The element-wise step of units [j0, j1) of one row: a (G) the gate pre-activations (for the
// GRU x W_ih^T + b_ih, with gh (G) = h W_hh^T + b_hh), hp (H) the previous h, cp / c (H) the
// LSTM's cell state before / after (else null), h (H) out. a is overwritten.
template <typename T>
inline void cell_units(int64_t kind, int64_t H, int64_t j0, int64_t j1, T* RK a, const T* RK gh,
                       const T* RK hp, const T* RK cp, T* RK c, T* RK h) {
  if (kind == LSTM) {
    for (int64_t j = j0; j < j1; ++j) a[j] = sigmoid_(a[j]);                      // i
    for (int64_t j = H + j0; j < H + j1; ++j) a[j] = sigmoid_(a[j]);              // f
    for (int64_t j = 2 * H + j0; j < 2 * H + j1; ++j) a[j] = tanh_(a[j]);         // g
    for (int64_t j = 3 * H + j0; j < 3 * H + j1; ++j) a[j] = sigmoid_(a[j]);      // o
    const T *RK i = a, *RK f = a + H, *RK g = a + 2 * H, *RK o = a + 3 * H;
    for (int64_t j = j0; j < j1; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
    for (int64_t j = j0; j < j1; ++j) h[j] = o[j] * tanh_(c[j]);
  } else if (kind == GRU) {
    for (int64_t j = j0; j < j1; ++j) a[j] = sigmoid_(a[j] + gh[j]);              // r
    for (int64_t j = H + j0; j < H + j1; ++j) a[j] = sigmoid_(a[j] + gh[j]);      // z
    const T *RK r = a, *RK z = a + H, *RK q = gh + 2 * H;
    T* RK n = a + 2 * H;
    for (int64_t j = j0; j < j1; ++j) n[j] = tanh_(n[j] + r[j] * q[j]);           // n
    for (int64_t j = j0; j < j1; ++j) h[j] = n[j] + z[j] * (hp[j] - n[j]);
  } else if (kind == RNN_RELU) {
    for (int64_t j = j0; j < j1; ++j) h[j] = a[j] < T(0) ? T(0) : a[j];          // NaN stays NaN
  } else {
    for (int64_t j = j0; j < j1; ++j) h[j] = tanh_(a[j]);
  }
}

// MGU's second half for units [j0, j1) of one row: a (2H) holds f, then n's whole
// pre-activation; h' = (n - h) f + h, as the cell computes it
template <typename T>
inline void mgu_units(int64_t H, int64_t j0, int64_t j1, T* RK a, const T* RK hp, T* RK h) {
  const T* RK f = a;
  T* RK n = a + H;
  for (int64_t j = j0; j < j1; ++j) n[j] = tanh_(n[j]);
  for (int64_t j = j0; j < j1; ++j) h[j] = (n[j] - hp[j]) * f[j] + hp[j];
}

// One layer's step at small batch, by chunks of `units` hidden units: a chunk computes the gate
// rows of its units (a vectorised dot per weight row, each row read once for all B rows; from
// table[ids[r]] instead of x W_ih^T + b_ih where given) and then their element-wise step, so the
// chunks are independent and any thread may take any chunk with the same result.
template <typename T> struct UnitsJob {
  int64_t kind, B, G, H, I, units;
  const T *x, *w_ih, *w_hh, *b_ih, *b_hh, *hp, *cp, *table, *rec;
  const int64_t* ids;
  T *acc, *gh, *h, *c;
};

template <typename T> void units_chunk(const void* p, int64_t chunk) {
  const UnitsJob<T>& J = *static_cast<const UnitsJob<T>*>(p);
  const int64_t B = J.B, G = J.G, H = J.H, I = J.I;
  const int64_t j0 = chunk * J.units, j1 = std::min(H, j0 + J.units);
  const bool gru = J.kind == GRU;
  T dx[4], dh[4];
  for (int64_t q = 0; q < G / H; ++q)
    for (int64_t i0 = q * H + j0; i0 < q * H + j1; i0 += 4) {
      const int64_t m = std::min<int64_t>(4, q * H + j1 - i0);
      for (int64_t r = 0; r < B; ++r) {
        if (!J.table) dots_n(J.w_ih + i0 * I, I, J.x + r * I, m, dx);
        if (J.rec)                                          // h W_hh^T computed ahead
          std::memcpy(dh, J.rec + r * G + i0, m * sizeof(T));
        else
          dots_n(J.w_hh + i0 * H, H, J.hp + r * H, m, dh);
        for (int64_t e = 0; e < m; ++e) {
          const int64_t i = i0 + e;
          T s;
          if (J.table) {
            s = J.table[J.ids[r] * G + i];
          } else {
            s = J.b_ih ? J.b_ih[i] : T(0);
            s += dx[e];
          }
          if (gru) {
            T g = J.b_hh ? J.b_hh[i] : T(0);
            g += dh[e];
            J.gh[r * G + i] = g;
          } else {
            if (J.b_hh) s += J.b_hh[i];
            s += dh[e];
          }
          J.acc[r * G + i] = s;
        }
      }
    }
  for (int64_t r = 0; r < B; ++r)
    cell_units(J.kind, H, j0, j1, J.acc + r * G, J.gh + r * G, J.hp + r * H,
               J.cp ? J.cp + r * H : nullptr, J.c ? J.c + r * H : nullptr, J.h + r * H);
}

// MGU (rnnkit/cells/mgu.py) at small batch, two phases a layer: U_n multiplies f ⊙ h, so every
// unit's f comes first. Phase 1, a chunk's units: f = σ(x W_if^T + b_if + b_hf + h U_f^T) and n's
// input half x W_in^T + b_in + b_hn into acc (rows of table[ids[r]] for x W_ih^T + b_ih where
// given), fh = f ⊙ h into J.gh (B, H). Phase 2: n = tanh(acc_n + fh U_n^T), h' = (n - h) f + h.
template <typename T> void mgu_gate_chunk(const void* p, int64_t chunk) {
  const UnitsJob<T>& J = *static_cast<const UnitsJob<T>*>(p);
  const int64_t B = J.B, G = J.G, H = J.H, I = J.I;
  const int64_t j0 = chunk * J.units, j1 = std::min(H, j0 + J.units);
  T dx[4], dh[4];
  for (int64_t q = 0; q < 2; ++q)
    for (int64_t i0 = q * H + j0; i0 < q * H + j1; i0 += 4) {
      const int64_t m = std::min<int64_t>(4, q * H + j1 - i0);
      for (int64_t r = 0; r < B; ++r) {
        if (!J.table) dots_n(J.w_ih + i0 * I, I, J.x + r * I, m, dx);
        if (q == 0) dots_n(J.w_hh + i0 * H, H, J.hp + r * H, m, dh);
        for (int64_t e = 0; e < m; ++e) {
          const int64_t i = i0 + e;
          T s;
          if (J.table) {
            s = J.table[J.ids[r] * G + i];
          } else {
            s = J.b_ih ? J.b_ih[i] : T(0);
            s += dx[e];
          }
          if (J.b_hh) s += J.b_hh[i];
          if (q == 0) s += dh[e];
          J.acc[r * G + i] = s;
        }
      }
    }
  for (int64_t r = 0; r < B; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const T f = sigmoid_(J.acc[r * G + j]);
      J.acc[r * G + j] = f;
      J.gh[r * H + j] = f * J.hp[r * H + j];
    }
}

template <typename T> void mgu_new_chunk(const void* p, int64_t chunk) {
  const UnitsJob<T>& J = *static_cast<const UnitsJob<T>*>(p);
  const int64_t B = J.B, G = J.G, H = J.H;
  const int64_t j0 = chunk * J.units, j1 = std::min(H, j0 + J.units);
  T dh[4];
  for (int64_t i0 = H + j0; i0 < H + j1; i0 += 4) {
    const int64_t m = std::min<int64_t>(4, H + j1 - i0);
    for (int64_t r = 0; r < B; ++r) {
      dots_n(J.w_hh + i0 * H, H, J.gh + r * H, m, dh);
      for (int64_t e = 0; e < m; ++e) J.acc[r * G + i0 + e] += dh[e];
    }
  }
  for (int64_t r = 0; r < B; ++r)
    mgu_units(H, j0, j1, J.acc + r * G, J.hp + r * H, J.h + r * H);
}

// The output layer at small batch, by chunks of `rows` rows of W_out: logits (B, V) = b_out +
// h W_out^T.
template <typename T> struct OutJob {
  int64_t B, V, H, rows;
  const T *h, *w, *b;
  T* logits;
};

template <typename T> void out_chunk(const void* p, int64_t chunk) {
  const OutJob<T>& J = *static_cast<const OutJob<T>*>(p);
  const int64_t i1 = std::min(J.V, (chunk + 1) * J.rows);
  T d[4];
  for (int64_t i = chunk * J.rows; i < i1; i += 4) {
    const int64_t m = std::min<int64_t>(4, i1 - i);
    for (int64_t r = 0; r < J.B; ++r) {
      dots_n(J.w + i * J.H, J.H, J.h + r * J.H, m, d);
      for (int64_t e = 0; e < m; ++e) {
        T s = J.b ? J.b[i + e] : T(0);
        s += d[e];
        J.logits[r * J.V + i + e] = s;
      }
    }
  }
}

// fn over chunks [0, n): shared with the pool's workers, or all here where there is no pool
inline void run_chunks(rk_pool::Pool* pool, rk_pool::ChunkFn fn, const void* job, int64_t n) {
  if (pool)
    pool->run(fn, job, n);
  else
    for (int64_t c = 0; c < n; ++c) fn(job, c);
}

// One draw from a row of logits z (V), what rnnkit/decode/sampling.py's pick does: argmax at
// temperature 0 (the first maximum); else z / temperature, all but the top_k largest (top_k > 0)
// and all but the smallest set whose probability reaches top_p (0 < top_p < 1) masked out,
// p = softmax (in T), and the first token whose cumulative p (summed in double) exceeds
// u · its total. work: 2·V scratch.
template <typename T>
int64_t pick_row(int64_t V, const T* z, double temperature, int64_t top_k, double top_p,
                 double u, T* work, int64_t* order) {
  if (temperature == 0) {
    int64_t best = 0;
    for (int64_t j = 1; j < V; ++j)
      if (z[j] > z[best] || (std::isnan(z[j]) && !std::isnan(z[best]))) best = j;
    return best;
  }
  const T ninf = -std::numeric_limits<T>::infinity();
  T* s = work;
  const T t = static_cast<T>(temperature);
  for (int64_t j = 0; j < V; ++j) s[j] = z[j] / t;
  if (top_k > 0 && top_k < V) {                         // keep s >= the k-th largest value
    T* tmp = work + V;
    std::memcpy(tmp, s, V * sizeof(T));
    std::nth_element(tmp, tmp + (top_k - 1), tmp + V, std::greater<T>());
    const T kth = tmp[top_k - 1];
    for (int64_t j = 0; j < V; ++j)
      if (s[j] < kth) s[j] = ninf;
  }
  if (top_p > 0 && top_p < 1) {                         // nucleus, over the order of s
    for (int64_t j = 0; j < V; ++j) order[j] = j;
    std::stable_sort(order, order + V, [s](int64_t a, int64_t b) { return s[a] > s[b]; });
    T m = s[order[0]], sum = 0;
    T* e = work + V;
    for (int64_t j = 0; j < V; ++j) sum += (e[j] = std::exp(s[order[j]] - m));
    T cum = 0;
    for (int64_t j = 0; j < V; ++j) {
      const T p = e[j] / sum;
      cum += p;
      if (cum - p >= static_cast<T>(top_p)) s[order[j]] = ninf;   // mass before it reached p
    }
  }
  T m = ninf;
  for (int64_t j = 0; j < V; ++j) m = s[j] > m ? s[j] : m;
  T sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += (s[j] = std::exp(s[j] - m));
  double cdf_total = 0;
  for (int64_t j = 0; j < V; ++j) cdf_total += static_cast<double>(s[j] / sum);
  const double v = u * cdf_total;
  double cdf = 0;
  for (int64_t j = 0; j < V; ++j) {
    cdf += static_cast<double>(s[j] / sum);
    if (cdf > v) return j;
  }
  return V - 1;
}

}  // namespace

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

template <typename T> Spec<T>& spec() {      // never destroyed: a worker may be reading it
  static Spec<T>* s = new Spec<T>();
  return *s;
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
