// The vanilla RNN's time loops (rnnkit/cells/rnn.py): h_t = f(gi_t + h^r_{t-1} W_hh^T), f = tanh
// or relu; backward δa_t = δh_t ⊙ f'(a_t) (f' = 1 - h_t² or [h_t > 0], from h_t itself), then
// δh_{t-1} += (δa_t W_hh) ⊙ m. The step is one GEMM and one pass: only the loop is compiled.
#include "common.h"

namespace {

template <typename T> inline void act_rows(int64_t n, bool relu, T* RK a) {
  if (relu)
    for (int64_t j = 0; j < n; ++j) a[j] = a[j] < T(0) ? T(0) : a[j];    // NaN stays NaN
  else
    for (int64_t j = 0; j < n; ++j) a[j] = tanh_(a[j]);
}

template <typename T>
inline void act_grad_rows(int64_t n, bool relu, const T* RK dh, const T* RK h, T* RK da) {
  if (relu)
    for (int64_t j = 0; j < n; ++j) da[j] = h[j] > T(0) ? dh[j] : T(0);
  else
    for (int64_t j = 0; j < n; ++j) da[j] = dh[j] * (T(1) - h[j] * h[j]);
}

template <typename T>
void rnn_fwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, int64_t relu,
                  const T* w_hh_t, const T* mask, const T* gi, T* S_h, const T* h0) {
  const int64_t B = max_rows(plan, n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  for (int64_t s = 0; s < n_steps; ++s) {
    const Step& st = plan[s];
    const T* hp = entering(st, H, S_h, h0, hb);
    T* a = S_h + st.off * H;
    std::memcpy(a, gi + st.off * H, st.b * H * sizeof(T));
    gemm_rows<T>(gemm, st.b, H, H, masked_rows(st.b, H, hp, mask, hr), H, w_hh_t, H, T(1), a, H);
    act_rows(st.b * H, relu != 0, a);
  }
}

template <typename T>
void rnn_bwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, int64_t relu,
                  const T* w_hh, const T* mask, const T* S_h, T* dS_h, T* dG, T* dh0) {
  const int64_t B = max_rows(plan, n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *dhb = scratch<T, 4>(B * H).data();
  for (int64_t s = n_steps - 1; s >= 0; --s) {
    const Step& st = plan[s];
    T* dhp = entering_grad(st, H, dS_h, dh0, dhb);
    T* da = dG + st.off * H;
    act_grad_rows(st.b * H, relu != 0, dS_h + st.off * H, S_h + st.off * H, da);
    rows_times_w_into(gemm, st.b, H, H, da, w_hh, mask, dhr, dhp);
    scatter_grad(st, H, dhp, dS_h, dh0);
  }
}

// The layer-normalised RNN's loops (rnnkit/cells/gru_ln.py): a_t = gi_t + LN(h^r_{t-1} W_hh^T);
// backward δa_t (dG), δz_t = LN'(δa_t) (dGh), δh_{t-1} += (δz_t W_hh) ⊙ m.
template <typename T>
void lnrnn_fwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, int64_t relu,
                    const T* w_hh_t, const T* mask, const T* gi, const T* g_hh, const T* b_ln,
                    T* z, T* mu, T* rh, T* S_h, const T* h0, T eps) {
  const int64_t B = max_rows(plan, n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  for (int64_t s = 0; s < n_steps; ++s) {
    const Step& st = plan[s];
    const int64_t o = st.off;
    const T* hp = entering(st, H, S_h, h0, hb);
    gemm_rows<T>(gemm, st.b, H, H, masked_rows(st.b, H, hp, mask, hr), H, w_hh_t, H, T(0),
                 z + o * H, H);
    for (int64_t r = 0; r < st.b; ++r) {
      T* a = S_h + (o + r) * H;
      ln_row(H, z + (o + r) * H, g_hh, b_ln, gi + (o + r) * H, eps, mu + o + r, rh + o + r, a);
    }
    act_rows(st.b * H, relu != 0, S_h + o * H);
  }
}

template <typename T>
void lnrnn_bwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, int64_t relu,
                    const T* w_hh, const T* mask, const T* z, const T* mu, const T* rh,
                    const T* g_hh, const T* S_h, T* dS_h, T* dG, T* dGh, T* dh0) {
  const int64_t B = max_rows(plan, n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *dhb = scratch<T, 4>(B * H).data();
  T* tmp = scratch<T, 6>(2 * H).data();
  for (int64_t s = n_steps - 1; s >= 0; --s) {
    const Step& st = plan[s];
    const int64_t o = st.off;
    T* dhp = entering_grad(st, H, dS_h, dh0, dhb);
    act_grad_rows(st.b * H, relu != 0, dS_h + o * H, S_h + o * H, dG + o * H);
    for (int64_t r = 0; r < st.b; ++r)
      ln_back(dG + (o + r) * H, z + (o + r) * H, mu[o + r], rh[o + r], g_hh, H, dGh + (o + r) * H,
              tmp);
    rows_times_w_into(gemm, st.b, H, H, dGh + o * H, w_hh, mask, dhr, dhp);
    scatter_grad(st, H, dhp, dS_h, dh0);
  }
}

}  // namespace

#define RK_EXPORT_LNRNN(T, SFX)                                                                    \
  extern "C" void rk_lnrnn_fwd_loop_##SFX(                                                         \
      void* gemm, int64_t n, const Step* plan, int64_t H, int64_t relu, const T* w_hh_t,         \
      const T* mask, const T* gi, const T* g_hh, const T* b_ln, T* z, T* mu, T* rh, T* S_h,      \
      const T* h0, double eps) {                                                                  \
    lnrnn_fwd_loop<T>(gemm, n, plan, H, relu, w_hh_t, mask, gi, g_hh, b_ln, z, mu, rh, S_h, h0,   \
                      T(eps));                                                                     \
  }                                                                                                \
  extern "C" void rk_lnrnn_bwd_loop_##SFX(                                                         \
      void* gemm, int64_t n, const Step* plan, int64_t H, int64_t relu, const T* w_hh,           \
      const T* mask, const T* z, const T* mu, const T* rh, const T* g_hh, const T* S_h,          \
      T* dS_h, T* dG, T* dGh, T* dh0) {                                                           \
    lnrnn_bwd_loop<T>(gemm, n, plan, H, relu, w_hh, mask, z, mu, rh, g_hh, S_h, dS_h, dG, dGh,    \
                      dh0);                                                                        \
  }

RK_EXPORT_LNRNN(float, f32)
RK_EXPORT_LNRNN(double, f64)

#define RK_EXPORT_RNN(T, SFX)                                                                      \
  extern "C" void rk_rnn_fwd_loop_##SFX(void* gemm, int64_t n, const Step* plan, int64_t H,      \
                                        int64_t relu, const T* w_hh_t, const T* mask,             \
                                        const T* gi, T* S_h, const T* h0) {                       \
    rnn_fwd_loop<T>(gemm, n, plan, H, relu, w_hh_t, mask, gi, S_h, h0);                           \
  }                                                                                                \
  extern "C" void rk_rnn_bwd_loop_##SFX(void* gemm, int64_t n, const Step* plan, int64_t H,      \
                                        int64_t relu, const T* w_hh, const T* mask,               \
                                        const T* S_h, T* dS_h, T* dG, T* dh0) {                   \
    rnn_bwd_loop<T>(gemm, n, plan, H, relu, w_hh, mask, S_h, dS_h, dG, dh0);                      \
  }

RK_EXPORT_RNN(float, f32)
RK_EXPORT_RNN(double, f64)
