// The exponential smoothing filter of rnnkit/models/smoothing.py (history_forecast, where the
// equations are), run over a whole series for many parameter sets at once: W lanes (grid points
// × variables), each its own level, trend and k seasonal states, stepped together so the loop
// over lanes vectorises. For the one-step error e_t = z_t - (l + φb + s):
//
//   l <- (l + φb) + α e     b <- φb + β e     s_{t mod k} <- s + (γ·on) e   (seasonal only)
//
// At each origin t (ascending in `at`, written to row `slot`), before step t updates the states:
// either the K-step forecasts (l + d_h b) + s_{(t+h) mod k} (K > 0; d_h = φ + ... + φ^{h+1}, given
// as `damps`) or, with K = 0, the step's absolute error |e_t|. Each value is formed by the same
// IEEE operations in the same order as the numpy loop, so the two agree bit for bit: no
// contraction into fused multiply-adds here.
#include "declare.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// x (N, F); a, b, og, phi (W,); level, trend (W,) and season (k, W): the states at step `first`,
// stepped in place; damps (K, W); out (G, n, K, F) or, K = 0, (G, n, F), lane i = g F + f (the
// layout history_forecast returns, written in place: no transpose after).
#define RK_ARGS_smoothing_filter(X)                                                            \
  X(i64, first) X(i64, last) X(i64, W) X(i64, F) X(i64, k) X(i64, seasonal) X(i64, K)          \
  X(i64, n) X(in, x) X(in, a) X(in, b) X(in, og) X(in, phi) X(out, level) X(out, trend)        \
  X(out, season) X(opt, damps) X(idx, at) X(idx, slot) X(out, out)
RK_KERNEL(smoothing_filter) {
  std::vector<T> err(a.W);
  T *RK l = a.level, *RK tr = a.trend, *RK e = err.data();
  const T *RK al = a.a, *RK be = a.b, *RK og = a.og, *RK ph = a.phi;
  int64_t next = 0;
  for (int64_t t = a.first; t <= a.last; ++t) {
    if (a.K > 0) {                                          // forecasts from origin t
      for (; next < a.n && a.at[next] == t; ++next) {
        for (int64_t h = 0; h < a.K; ++h) {
          const T *RK d = a.damps + h * a.W, *RK s = a.season + ((t + h) % a.k) * a.W;
          T* RK o = a.out + (a.slot[next] * a.K + h) * a.F;
          const int64_t lane = a.n * a.K * a.F;          // from one grid point to the next
          for (int64_t i = 0; i < a.W; ++i)
            o[(i / a.F) * lane + i % a.F] = (l[i] + d[i] * tr[i]) + s[i];
        }
      }
      if (t == a.last) break;
    }
    const T* RK z = a.x + t * a.F;
    T* RK s = a.season + (t % a.k) * a.W;
    if (a.F == 1) {                                         // one variable: vectorised
      const T z0 = z[0];
      for (int64_t i = 0; i < a.W; ++i) e[i] = z0 - ((l[i] + ph[i] * tr[i]) + s[i]);
    } else {
      for (int64_t i = 0; i < a.W; ++i) e[i] = z[i % a.F] - ((l[i] + ph[i] * tr[i]) + s[i]);
    }
    if (a.K == 0) {                                         // the one-step errors at origin t
      for (; next < a.n && a.at[next] == t; ++next) {
        T* RK o = a.out + a.slot[next] * a.F;
        const int64_t lane = a.n * a.F;
        for (int64_t i = 0; i < a.W; ++i) o[(i / a.F) * lane + i % a.F] = std::abs(e[i]);
      }
      if (t == a.last) break;
    }
    for (int64_t i = 0; i < a.W; ++i) {
      T pt = ph[i] * tr[i];
      l[i] = (l[i] + pt) + al[i] * e[i];
      tr[i] = pt + be[i] * e[i];
    }
    if (a.seasonal)
      for (int64_t i = 0; i < a.W; ++i) s[i] = s[i] + og[i] * e[i];
  }
}
