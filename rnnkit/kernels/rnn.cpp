// The vanilla RNN's time loops (rnnkit/cells/rnn.py): h_t = f(gi_t + h^r_{t-1} W_hh^T), f = tanh
// or relu; backward δa_t = δh_t ⊙ f'(a_t) (f' = 1 - h_t² or [h_t > 0], from h_t itself), then
// δh_{t-1} += (δa_t W_hh) ⊙ m. The step is one GEMM and one pass: only the loop is compiled
// (scaffold.h), with the rows below.
#include "scaffold.h"

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

// The plain RNN: a_t = gi_t + h^r_{t-1} W_hh^T (GEMM into S_h's rows, gi copied there first),
// then h_t = f(a_t) in place; backward δa_t (dG) from h_t itself.
struct RNNRows : RowPolicy {
  static constexpr int GATES = 1;
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    T* dst = a.S_h + st.off * a.H;
    std::memcpy(dst, a.gi + st.off * a.H, st.b * a.H * sizeof(T));
    beta = T(1);
    return dst;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T*, const T*, T*) {
    act_rows(a.H, a.relu != 0, a.S_h + i * a.H);
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T*, const T*, T*, T*, T*) {
    const int64_t H = a.H;
    act_grad_rows(H, a.relu != 0, static_cast<const T*>(a.dS_h + i * H), a.S_h + i * H,
                  a.dG + i * H);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dG + o * a.H; }
};

// The layer-normalised RNN (rnnkit/cells/gru_ln.py): a_t = gi_t + LN(z_t), z_t = h^r_{t-1} W_hh^T;
// backward δa_t (dG), δz_t = LN'(δa_t) (dGh), δh_{t-1} += (δz_t W_hh) ⊙ m. mu, rh: (N).
struct LNRNNRows : RNNRows {
  static constexpr int64_t SCRATCH(int64_t H) { return 2 * H; }
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    beta = T(0);
    return a.z + st.off * a.H;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T*, const T*, T*) {
    const int64_t H = a.H;
    T* h = a.S_h + i * H;
    ln_row(H, a.z + i * H, a.g_hh, a.b_ln, a.gi + i * H, a.eps, a.mu + i, a.rh + i, h);
    act_rows(H, a.relu != 0, h);
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T*, const T*, T*, T*, T* tmp) {
    const int64_t H = a.H;
    RNNRows::backward_row(a, i, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                          tmp, tmp, tmp);
    ln_back(static_cast<const T*>(a.dG + i * H), a.z + i * H, a.mu[i], a.rh[i], a.g_hh, H,
            a.dGh + i * H, tmp);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dGh + o * a.H; }
};

}  // namespace

// relu: 0 tanh, 1 relu. gi, S_h: (N, H).
#define RK_ARGS_rnn_fwd_loop(X) RK_FWD_LOOP(X) X(i64, relu) X(in, gi) X(out, S_h) X(in, h0)
RK_KERNEL(rnn_fwd_loop) { forward_loop<RNNRows>(a); }

#define RK_ARGS_rnn_bwd_loop(X) \
  RK_BWD_LOOP(X) X(i64, relu) X(in, S_h) X(out, dS_h) X(out, dG) X(out, dh0)
RK_KERNEL(rnn_bwd_loop) { backward_loop<RNNRows>(a); }

#define RK_ARGS_lnrnn_fwd_loop(X)                                                              \
  RK_FWD_LOOP(X) X(i64, relu) X(in, gi) X(in, g_hh) X(in, b_ln) X(out, z) X(out, mu)         \
  X(out, rh) X(out, S_h) X(in, h0) X(real, eps)
RK_KERNEL(lnrnn_fwd_loop) { forward_loop<LNRNNRows>(a); }

#define RK_ARGS_lnrnn_bwd_loop(X)                                                              \
  RK_BWD_LOOP(X) X(i64, relu) X(in, z) X(in, mu) X(in, rh) X(in, g_hh) X(in, S_h) X(out, dS_h) \
  X(out, dG) X(out, dGh) X(out, dh0)
RK_KERNEL(lnrnn_bwd_loop) { backward_loop<LNRNNRows>(a); }
