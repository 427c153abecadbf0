// The peephole LSTM's time loops (rnnkit/cells/peephole_lstm.py, where the equations and their
// derivative are): the scaffold's loops (scaffold.h) with these rows. a_t = gi + h^r W_hh^T is the
// GEMM's (acts holds gi on entry); per row, with p_i, p_f, p_o (H) the peephole weights:
//
//   i = σ(a^i + p_i c_{t-1})   f = σ(a^f + p_f c_{t-1})   g = tanh(a^g)
//   c_t = f c_{t-1} + i g      o = σ(a^o + p_o c_t)       h_t = o tanh(c_t)
//
// backward (δc_t arrives in dS_c from the later step; the row completes it):
//
//   δa^o = δh tanh(c_t) σ'(o)   δc_t += δh o (1 - tanh² c_t) + δa^o p_o
//   δa^i = δc_t g σ'(i)   δa^f = δc_t c_{t-1} σ'(f)   δa^g = δc_t i (1 - g²)
//   δc_{t-1} += δc_t f + δa^i p_i + δa^f p_f
//
// The peephole weights' gradients are sums over tokens, formed in Python after the loop.
#include "scaffold.h"

namespace {

struct PeepholeRows : RowPolicy {
  static constexpr int K = 2, GATES = 4;
  static constexpr bool PREV_C = true;
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    beta = T(1);
    return a.acts + st.off * 4 * a.H;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i_, const T*, const T* RK cp, T*) {
    const int64_t H = a.H;
    T* RK x = a.acts + i_ * 4 * H;
    T *RK i = x, *RK f = x + H, *RK g = x + 2 * H, *RK o = x + 3 * H;
    T *RK c = a.S_c + i_ * H, *RK h = a.S_h + i_ * H, *RK t = a.tc + i_ * H;
    const T *RK p_i = a.p_i, *RK p_f = a.p_f, *RK p_o = a.p_o;
    for (int64_t j = 0; j < H; ++j) {
      i[j] = sigmoid_(i[j] + p_i[j] * cp[j]);
      f[j] = sigmoid_(f[j] + p_f[j] * cp[j]);
      g[j] = tanh_(g[j]);
      c[j] = f[j] * cp[j] + i[j] * g[j];
      o[j] = sigmoid_(o[j] + p_o[j] * c[j]);
      t[j] = tanh_(c[j]);
      h[j] = o[j] * t[j];
    }
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i_, const T*, const T* RK cp, T*, T* RK dcp, T*) {
    const int64_t H = a.H;
    const T* RK x = a.acts + i_ * 4 * H;
    const T *RK i = x, *RK f = x + H, *RK g = x + 2 * H, *RK o = x + 3 * H;
    const T *RK t = a.tc + i_ * H, *RK dh = a.dS_h + i_ * H;
    T* RK dc = a.dS_c + i_ * H;
    T* RK d = a.dG + i_ * 4 * H;
    const T *RK p_i = a.p_i, *RK p_f = a.p_f, *RK p_o = a.p_o;
    for (int64_t j = 0; j < H; ++j) {
      const T dao = dh[j] * t[j] * o[j] * (T(1) - o[j]);
      const T dcj = dc[j] + dh[j] * o[j] * (T(1) - t[j] * t[j]) + dao * p_o[j];
      const T dai = dcj * g[j] * i[j] * (T(1) - i[j]);
      const T daf = dcj * cp[j] * f[j] * (T(1) - f[j]);
      d[j] = dai;
      d[H + j] = daf;
      d[2 * H + j] = dcj * i[j] * (T(1) - g[j] * g[j]);
      d[3 * H + j] = dao;
      dc[j] = dcj;
      dcp[j] += dcj * f[j] + dai * p_i[j] + daf * p_f[j];
    }
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dG + o * 4 * a.H; }
};

}  // namespace

#define RK_ARGS_peephole_fwd_loop(X)                                                           \
  RK_FWD_LOOP(X) X(in, p_i) X(in, p_f) X(in, p_o) X(out, acts) X(out, S_h) X(out, S_c)       \
  X(out, tc) X(in, h0) X(in, c0)
RK_KERNEL(peephole_fwd_loop) { forward_loop<PeepholeRows>(a); }

#define RK_ARGS_peephole_bwd_loop(X)                                                           \
  RK_BWD_LOOP(X) X(in, p_i) X(in, p_f) X(in, p_o) X(in, acts) X(in, S_c) X(in, tc) X(in, c0) \
  X(out, dS_h) X(out, dS_c) X(out, dG) X(out, dh0) X(out, dc0)
RK_KERNEL(peephole_bwd_loop) { backward_loop<PeepholeRows>(a); }
