// IndRNN's time loops (rnnkit/cells/indrnn.py, where the equations and their derivative are):
// the scaffold's loops (scaffold.h) with a diagonal recurrence. The recurrent weight is a vector
// u (H), so the step's "GEMM" is u ⊙ h^r_{t-1} (DIAGONAL) and the backward's δh^r = δa ⊙ u:
//
//   a_t = gi_t + u ⊙ h^r_{t-1}     h_t = relu(a_t)     δa_t = δh_t [h_t > 0]
//
// δu = Σ_t δa_t ⊙ h^r_{t-1} is formed in Python after the loop (one product over all tokens).
#include "scaffold.h"

namespace {

struct IndRNNRows : RowPolicy {
  static constexpr int GATES = 1;
  static constexpr bool DIAGONAL = true;
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    T* dst = a.S_h + st.off * a.H;                       // a_t = gi_t + ..., in h_t's rows
    std::memcpy(dst, a.gi + st.off * a.H, st.b * a.H * sizeof(T));
    beta = T(1);
    return dst;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T*, const T*, T*) {
    T* RK h = a.S_h + i * a.H;
    for (int64_t j = 0; j < a.H; ++j) h[j] = h[j] < T(0) ? T(0) : h[j];   // NaN stays NaN
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T*, const T*, T*, T*, T*) {
    const T *RK dh = a.dS_h + i * a.H, *RK h = a.S_h + i * a.H;
    T* RK da = a.dG + i * a.H;
    for (int64_t j = 0; j < a.H; ++j) da[j] = h[j] > T(0) ? dh[j] : T(0);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dG + o * a.H; }
};

}  // namespace

// w_hh_t, w_hh: u (H); gi, S_h: (N, H)
#define RK_ARGS_indrnn_fwd_loop(X) RK_FWD_LOOP(X) X(in, gi) X(out, S_h) X(in, h0)
RK_KERNEL(indrnn_fwd_loop) { forward_loop<IndRNNRows>(a); }

#define RK_ARGS_indrnn_bwd_loop(X) RK_BWD_LOOP(X) X(in, S_h) X(out, dS_h) X(out, dG) X(out, dh0)
RK_KERNEL(indrnn_bwd_loop) { backward_loop<IndRNNRows>(a); }
