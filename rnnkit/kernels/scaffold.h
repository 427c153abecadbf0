// The compiled time loop, written once for every cell: the plan walk, the state entering each
// step (gathered where it mixes earlier steps' rows with the initial state's), recurrent
// dropout, the recurrent GEMM through torch's BLAS, and in the backward the scatter of each
// step's δ(entering state) to the step it came from or to δh0 / δc0. A cell supplies only what
// happens to one row (a policy struct P, below) and names its loop's arguments as the scaffold
// expects (RK_FWD_LOOP / RK_BWD_LOOP):
//
//   forward   for each step t (plan order), rows [o, o + b):
//               h^r = h_{t-1} ⊙ m                                   (mask: null for none)
//               P::gemm_into(a, st, beta) += h^r W_hh^T             (b, G·H), after beta ·
//               P::forward_row(a, o + r, h_{t-1}[r], c_{t-1}[r], tmp)   for every row r
//   backward  for each step t in reverse:
//               P::backward_row(a, o + r, h_{t-1}[r], c_{t-1}[r], δh_{t-1}[r], δc_{t-1}[r], tmp)
//               δh_{t-1} += (P::gemm_grad(a, o) W_hh) ⊙ m            the δ that multiplied W_hh
//               δh_{t-1}, δc_{t-1} to the earlier step's rows of dS_h, dS_c, or to dh0, dc0
//
// P declares: K (states carried: 1 = h, 2 = h and c), GATES (the GEMM is GATES·H wide),
// DIAGONAL (W_hh is a vector u (H): the product is u ⊙ h^r and δa ⊙ u, no GEMM),
// PREV_H / PREV_C (whether backward_row reads h_{t-1} / c_{t-1}), SCRATCH(H) (elements of tmp
// each row may use). Arguments the scaffold reads by name: gemm, n_steps, plan, H, mask;
// forward w_hh_t (H, G·H), S_h, h0 (and S_c, c0 where K = 2); backward w_hh (G·H, H), dS_h, dh0
// (dS_c, dc0 where K = 2) and S_h, h0 / S_c, c0 where PREV_H / PREV_C. S_·, dS_·: (N, H) per
// token; h0, c0, dh0, dc0: (B, H) contiguous; row i of an (N, D) buffer starts at i·D.
#pragma once
#include "common.h"
#include "declare.h"

// the arguments every time loop starts with
#define RK_FWD_LOOP(X) X(addr, gemm) X(i64, n_steps) X(plan, plan) X(i64, H) X(in, w_hh_t) X(opt, mask)
#define RK_BWD_LOOP(X) X(addr, gemm) X(i64, n_steps) X(plan, plan) X(i64, H) X(in, w_hh) X(opt, mask)

namespace {

// The recurrent product where W_hh is a vector u (H), a cell with DIAGONAL: y = beta y + u ⊙ x
// over a row, and backward δh_{t-1} += (δa ⊙ u) ⊙ m over b rows (mask: null for none).
template <typename T>
inline void diag_rows(int64_t H, const T* RK u, const T* RK x, T beta, T* RK y) {
  for (int64_t j = 0; j < H; ++j) y[j] = beta * y[j] + u[j] * x[j];
}

template <typename T>
inline void diag_back_rows(int64_t b, int64_t H, const T* RK da, const T* RK u, const T* RK mask,
                           T* RK dhp) {
  if (mask)
    for (int64_t r = 0; r < b; ++r)
      for (int64_t j = 0; j < H; ++j) dhp[r * H + j] += da[r * H + j] * u[j] * mask[r * H + j];
  else
    for (int64_t r = 0; r < b; ++r)
      for (int64_t j = 0; j < H; ++j) dhp[r * H + j] += da[r * H + j] * u[j];
}

template <class P, class A> void forward_loop(const A& a) {
  using T = typename A::T;
  const int64_t H = a.H, G = P::GATES * H, B = max_rows(a.plan, a.n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  T* cb = scratch<T, 3>(P::K == 2 ? B * H : 0).data();
  T* tmp = scratch<T, 6>(P::SCRATCH(H)).data();
  for (int64_t s = 0; s < a.n_steps; ++s) {
    const Step& st = a.plan[s];
    const T* hp = entering(st, H, a.S_h, a.h0, hb);
    const T* cp = nullptr;
    if constexpr (P::K == 2) cp = entering(st, H, a.S_c, a.c0, cb);
    T beta;
    T* dst = P::gemm_into(a, st, beta);
    const T* hrec = masked_rows(st.b, H, hp, a.mask, hr);
    if constexpr (P::DIAGONAL)                             // W_hh a vector u (H): u ⊙ h^r
      for (int64_t r = 0; r < st.b; ++r) diag_rows(H, a.w_hh_t, hrec + r * H, beta, dst + r * H);
    else
      gemm_rows<T>(a.gemm, st.b, G, H, hrec, H, a.w_hh_t, G, beta, dst, G);
    for (int64_t r = 0; r < st.b; ++r)
      P::forward_row(a, st.off + r, hp + r * H, cp ? cp + r * H : nullptr, tmp);
  }
}

template <class P, class A> void backward_loop(const A& a) {
  using T = typename A::T;
  const int64_t H = a.H, G = P::GATES * H, B = max_rows(a.plan, a.n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(P::PREV_H ? B * H : 0).data();
  T* cb = scratch<T, 3>(P::PREV_C ? B * H : 0).data();
  T *dhb = scratch<T, 4>(B * H).data(), *dcb = scratch<T, 5>(P::K == 2 ? B * H : 0).data();
  T* tmp = scratch<T, 6>(P::SCRATCH(H)).data();
  for (int64_t s = a.n_steps - 1; s >= 0; --s) {
    const Step& st = a.plan[s];
    const T *hp = nullptr, *cp = nullptr;
    if constexpr (P::PREV_H) hp = entering(st, H, a.S_h, a.h0, hb);
    if constexpr (P::PREV_C) cp = entering(st, H, a.S_c, a.c0, cb);
    T* dhp = entering_grad(st, H, a.dS_h, a.dh0, dhb);
    T* dcp = nullptr;
    if constexpr (P::K == 2) dcp = entering_grad(st, H, a.dS_c, a.dc0, dcb);
    for (int64_t r = 0; r < st.b; ++r)
      P::backward_row(a, st.off + r, hp ? hp + r * H : nullptr, cp ? cp + r * H : nullptr,
                      dhp + r * H, dcp ? dcp + r * H : nullptr, tmp);
    if constexpr (P::DIAGONAL)                             // δh_{t-1} += (δa ⊙ u) ⊙ m
      diag_back_rows(st.b, H, P::gemm_grad(a, st.off), a.w_hh, a.mask, dhp);
    else
      rows_times_w_into(a.gemm, st.b, H, G, P::gemm_grad(a, st.off), a.w_hh, a.mask, dhr, dhp);
    scatter_grad(st, H, dhp, a.dS_h, a.dh0);
    if constexpr (P::K == 2) scatter_grad(st, H, dcp, a.dS_c, a.dc0);
  }
}

// The usual policy's defaults: one state, no scratch, backward reads no entering state.
struct RowPolicy {
  static constexpr int K = 1;
  static constexpr bool PREV_H = false, PREV_C = false, DIAGONAL = false;
  static constexpr int64_t SCRATCH(int64_t) { return 0; }
};

}  // namespace
