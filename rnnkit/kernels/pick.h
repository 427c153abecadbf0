// One token drawn from a row of logits, for sampling in the kernel (step.cpp's lm_sample).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>

namespace {

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
