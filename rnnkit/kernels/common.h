// Shared by the fused kernels (lstm.cpp, gru.cpp): activations, row reductions, layer norm.
//
// float: exp by range reduction and a degree-6 polynomial (Cephes expf, ~1 ulp), branch-free so
// the compiler vectorises the loops that call it; double: the C library's (gradcheck, tests).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

#define RK __restrict__    // distinct buffers (and distinct rows of one) never overlap

// ---- activations ---------------------------------------------------------------------------
// float: exp by range reduction and a degree-6 polynomial (Cephes expf, ~1 ulp), branch-free so
// the compiler vectorises the loops that call it. double: the C library's (gradcheck, tests).

inline float exp_(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);      // x = n ln2 + r, |r| <= ln2 / 2
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;       // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double exp_(double x) { return std::exp(x); }

template <typename T> inline T sigmoid_(T x) { return T(1) / (T(1) + exp_(-x)); }

inline float tanh_(float x) {
  float a = x < 0.0f ? -x : x;
  float z = x * x;                                            // |x| < 0.625: odd polynomial
  float s = -5.70498872745e-3f;
  s = s * z + 2.06390887954e-2f;
  s = s * z - 5.37397155531e-2f;
  s = s * z + 1.33314422036e-1f;
  s = s * z - 3.33332819422e-1f;
  s = s * z * x + x;
  float l = 1.0f - 2.0f / (exp_(2.0f * a) + 1.0f);            // otherwise 1 - 2 / (e^{2|x|} + 1)
  l = x < 0.0f ? -l : l;
  return a < 0.625f ? s : l;
}
inline double tanh_(double x) { return std::tanh(x); }

// ---- layer norm of one row -----------------------------------------------------------------
// Sums with 16 independent lanes: vectorised without reassociating a single chain.
constexpr int L = 16;

template <typename T> inline T row_sum(const T* x, int64_t D) {
  T acc[L] = {};
  int64_t j = 0;
  for (; j + L <= D; j += L)
    for (int k = 0; k < L; ++k) acc[k] += x[j + k];
  T s = 0;
  for (; j < D; ++j) s += x[j];
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}

template <typename T> inline T row_dot(const T* x, const T* y, int64_t D) {
  T acc[L] = {};
  int64_t j = 0;
  for (; j + L <= D; j += L)
    for (int k = 0; k < L; ++k) acc[k] += x[j + k] * y[j + k];
  T s = 0;
  for (; j < D; ++j) s += x[j] * y[j];
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}

template <typename T> inline T row_sqdev(const T* x, T mu, int64_t D) {
  T acc[L] = {};
  int64_t j = 0;
  for (; j + L <= D; j += L)
    for (int k = 0; k < L; ++k) { T d = x[j + k] - mu; acc[k] += d * d; }
  T s = 0;
  for (; j < D; ++j) { T d = x[j] - mu; s += d * d; }
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}

// μ and 1/σ of a row (biased variance, as torch.nn.LayerNorm)
template <typename T> inline void ln_stats(const T* z, int64_t D, T eps, T* mu, T* rstd) {
  T m = row_sum(z, D) / T(D);
  T v = row_sqdev(z, m, D) / T(D);
  *mu = m;
  *rstd = T(1) / std::sqrt(v + eps);
}

// δz = (δx̂ - mean(δx̂) - x̂ mean(δx̂ x̂)) / σ with δx̂ = δy γ, x̂ = (z - μ) / σ; tmp: 2·D scratch
template <typename T>
inline void ln_back(const T* RK dy, const T* RK z, T mu, T rstd, const T* RK gamma, int64_t D,
                    T* RK dz, T* RK tmp) {
  T* RK dxh = tmp;
  T* RK xh = tmp + D;
  for (int64_t j = 0; j < D; ++j) {
    dxh[j] = dy[j] * gamma[j];
    xh[j] = (z[j] - mu) * rstd;
  }
  T m1 = row_sum(dxh, D) / T(D);
  T m2 = row_dot(dxh, xh, D) / T(D);
  for (int64_t j = 0; j < D; ++j) dz[j] = (dxh[j] - m1 - xh[j] * m2) * rstd;
}

// A thread's scratch memory; ID keeps users that hold theirs at the same time apart.
template <typename T, int ID = 0> std::vector<T>& scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf;
}

template <typename T> inline void add_rows(int64_t n, const T* RK x, T* RK y) {
  for (int64_t j = 0; j < n; ++j) y[j] += x[j];
}

// y = LN(x) with the row's μ, 1/σ: y = (x - μ) / σ γ + β (+ add, where given)
template <typename T>
inline void ln_apply_row(int64_t D, const T* RK x, T m, T s, const T* RK gamma,
                         const T* RK beta, const T* RK add, T* RK y) {
  if (add)
    for (int64_t j = 0; j < D; ++j) y[j] = add[j] + (x[j] - m) * s * gamma[j] + beta[j];
  else
    for (int64_t j = 0; j < D; ++j) y[j] = (x[j] - m) * s * gamma[j] + beta[j];
}

// y = LN(x) + beta2 over a row: the layer norm of a recurrent product plus a bias (b_hh, may be
// null); records the row's μ and 1/σ
template <typename T>
inline void ln_row(int64_t D, const T* x, const T* gamma, const T* beta, const T* bias, T eps,
                   T* mu, T* rstd, T* y) {
  ln_stats(x, D, eps, mu, rstd);
  ln_apply_row(D, x, *mu, *rstd, gamma, beta, static_cast<const T*>(nullptr), y);
  if (bias) add_rows(D, bias, y);
}

// ---- matrix products through torch's own BLAS ------------------------------------------------
// The time loops call the Fortran-interface GEMM (sgemm_ / dgemm_) that torch's CPU library
// exports; rnnkit/kernels/__init__.py looks it up and passes its address. 32-bit integers (LP64).
template <typename T>
using gemm_fn = void (*)(const char*, const char*, const int*, const int*, const int*, const T*,
                         const T*, const int*, const T*, const int*, const T*, T*, const int*);

// Row-major C (b × n, row stride ldc) = beta C + A (b × k, lda) · B (k × n, ldb). In column-major
// terms that is C^T = B^T A^T: the same memory, operands swapped.
template <typename T>
inline void gemm_rows(void* g, int64_t b, int64_t n, int64_t k, const T* A, int64_t lda,
                      const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (b == 0) return;
  const char no = 'N';
  const int m_ = static_cast<int>(n), n_ = static_cast<int>(b), k_ = static_cast<int>(k);
  const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
  const T one = 1;
  reinterpret_cast<gemm_fn<T>>(g)(&no, &no, &m_, &n_, &k_, &one, B, &la, A, &lb, &beta, C, &lc);
}

// A time loop's plan: per step, in the order the loop runs, {row offset of the step's tokens,
// rows b, row offset `prev` in S of the state entering it, nprev}: the entering state's rows
// [0, nprev) are S's rows from `prev`, its rows [nprev, b) the initial state's rows [nprev, b)
// (nprev = 0: all from the initial state; 0 < nprev < b where a reverse pass reaches the last
// step of shorter sequences).
struct Step {
  int64_t off, b, prev, nprev;
};

inline int64_t max_rows(const Step* plan, int64_t n) {
  int64_t m = 0;
  for (int64_t s = 0; s < n; ++s) m = plan[s].b > m ? plan[s].b : m;
  return m;
}

// The state entering a step as one (b, H) block: a block of S or of the initial state where it
// is one, else gathered into buf.
template <typename T>
inline const T* entering(const Step& st, int64_t H, const T* S, const T* init, T* buf) {
  if (st.nprev == st.b) return S + st.prev * H;
  if (st.nprev == 0) return init;
  std::memcpy(buf, S + st.prev * H, st.nprev * H * sizeof(T));
  std::memcpy(buf + st.nprev * H, init + st.nprev * H, (st.b - st.nprev) * H * sizeof(T));
  return buf;
}

// Where a step adds the gradient of its entering state: that block, or buf zeroed, whose rows
// scatter_grad then adds where they belong.
template <typename T>
inline T* entering_grad(const Step& st, int64_t H, T* dS, T* dinit, T* buf) {
  if (st.nprev == st.b) return dS + st.prev * H;
  if (st.nprev == 0) return dinit;
  std::memset(buf, 0, st.b * H * sizeof(T));
  return buf;
}

template <typename T>
inline void scatter_grad(const Step& st, int64_t H, const T* buf, T* dS, T* dinit) {
  if (st.nprev == st.b || st.nprev == 0) return;
  add_rows(st.nprev * H, buf, dS + st.prev * H);
  add_rows((st.b - st.nprev) * H, buf + st.nprev * H, dinit + st.nprev * H);
}

// Recurrent dropout around a step's GEMMs (mask: (B, H), one row per batch row; null: none).
// h^r = h_{t-1} ⊙ m into hr, or h_{t-1} itself.
template <typename T>
inline const T* masked_rows(int64_t b, int64_t H, const T* hp, const T* mask, T* hr) {
  if (!mask) return hp;
  for (int64_t r = 0; r < b; ++r)
    for (int64_t j = 0; j < H; ++j) hr[r * H + j] = hp[r * H + j] * mask[r * H + j];
  return hr;
}

// δh_{t-1} += (δa W_hh) ⊙ m: the GEMM into dhr first where there is a mask.
template <typename T>
inline void rows_times_w_into(void* gemm, int64_t b, int64_t H, int64_t G, const T* da,
                              const T* w_hh, const T* mask, T* dhr, T* dhp) {
  if (!mask) {
    gemm_rows<T>(gemm, b, H, G, da, G, w_hh, H, T(1), dhp, H);
    return;
  }
  gemm_rows<T>(gemm, b, H, G, da, G, w_hh, H, T(0), dhr, H);
  for (int64_t r = 0; r < b; ++r)
    for (int64_t j = 0; j < H; ++j) dhp[r * H + j] += dhr[r * H + j] * mask[r * H + j];
}

}  // namespace
