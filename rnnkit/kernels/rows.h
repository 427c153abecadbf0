// Dot products of weight rows with a vector, for the inference step (step.cpp): the rows four
// at a time, the GEMM above a small batch, and bias rows.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "common.h"

namespace {

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

}  // namespace
