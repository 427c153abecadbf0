// Fused per-step kernels of the GRU (torch.nn.GRU's reset-after form; rnnkit/cells/gru.py):
//
//   r = σ(gi^r + gh^r)   z = σ(gi^z + gh^z)   n = tanh(gi^n + r ⊙ gh^n)   h = n + z ⊙ (h_{t-1} - n)
//
// gi: the input half (b, 3H); gh = W_hh h_{t-1} + b_hh (b, 3H), torch's matmul. Rows as in
// lstm.cpp; h_prev may have any row stride (ld_hp; 0 for a broadcast initial state).
#include "scaffold.h"

namespace {

// acts (3H) holds gi on entry and [r z n] on exit; writes h_t
template <typename T>
inline void gru_fwd_row(int64_t H, T* RK a, const T* RK gh, const T* RK hp, T* RK h) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_(a[j] + gh[j]);              // r_t, z_t
  const T *RK r = a, *RK z = a + H;
  T* RK n = a + 2 * H;
  const T* RK q = gh + 2 * H;
  for (int64_t j = 0; j < H; ++j) n[j] = tanh_(n[j] + r[j] * q[j]);               // n_t
  for (int64_t j = 0; j < H; ++j) h[j] = n[j] + z[j] * (hp[j] - n[j]);            // h_t
}

// δâ^n = δh (1 - z)(1 - n²)   δâ^z = δh (h_{t-1} - n) σ'   δâ^r = δâ^n q σ'   δq = δâ^n r
// dgi ← [δâ^r δâ^z δâ^n], dgh ← [δâ^r δâ^z δq], δh_{t-1} += δh z (dhp)
template <typename T>
inline void gru_bwd_row(int64_t H, const T* RK dh, const T* RK r, const T* RK z, const T* RK n,
                        const T* RK q, const T* RK hp, T* RK dr, T* RK dz, T* RK dn, T* RK dr_h,
                        T* RK dz_h, T* RK dq, T* RK dhp) {
  for (int64_t j = 0; j < H; ++j) {
    T dnj = dh[j] * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
    T dzj = dh[j] * (hp[j] - n[j]) * z[j] * (T(1) - z[j]);
    T drj = dnj * q[j] * r[j] * (T(1) - r[j]);
    dr[j] = drj;
    dz[j] = dzj;
    dn[j] = dnj;
    dr_h[j] = drj;
    dz_h[j] = dzj;
    dq[j] = dnj * r[j];
    dhp[j] += dh[j] * z[j];
  }
}


// One row's backward from acts (r z n), gh (its q = gh^n part), into dgi (3H), dgh (3H), dhp.
template <typename T>
inline void gru_bwd_row(int64_t H, const T* dh, const T* a, const T* gh, const T* hp, T* di,
                        T* dg, T* dhp) {
  gru_bwd_row(H, dh, a, a + H, a + 2 * H, gh + 2 * H, hp, di, di + H, di + 2 * H, dg, dg + H,
              dg + 2 * H, dhp);
}

// ---- the time loops' rows (scaffold.h) ---------------------------------------------------------
// The GRU: gh_t = h^r_{t-1} W_hh^T + b_hh (GEMM; b_hh may be null), the row; backward the row
// (δâ into dG, δ(gh) into dGh), then δh_{t-1} += (δ(gh)_t W_hh) ⊙ m. acts, gh: (N, 3H).
struct GRURows : RowPolicy {
  static constexpr int GATES = 3;
  static constexpr bool PREV_H = true;
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    const int64_t G = 3 * a.H;
    T* g = a.gh + st.off * G;
    if (a.b_hh)
      for (int64_t r = 0; r < st.b; ++r) std::memcpy(g + r * G, a.b_hh, G * sizeof(T));
    beta = T(a.b_hh ? 1 : 0);
    return g;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T* hp, const T*, T*) {
    const int64_t H = a.H, G = 3 * H;
    gru_fwd_row(H, a.acts + i * G, a.gh + i * G, hp, a.S_h + i * H);
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T* hp, const T*, T* dhp, T*, T*) {
    const int64_t H = a.H, G = 3 * H;
    gru_bwd_row(H, a.dS_h + i * H, a.acts + i * G, a.gh + i * G, hp, a.dG + i * G, a.dGh + i * G,
                dhp);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dGh + o * 3 * a.H; }
};

// The layer-normalised GRU (rnnkit/cells/gru_ln.py): z_t = h^r_{t-1} W_hh^T (GEMM), q_t = LN(z_t)
// + b_hh, then the GRU row with q_t for gh (acts takes a copy of gi first). Backward: the GRU row
// gives δâ (dG) and δq (dGh); δz = LN'(δq) (dZ); δh_{t-1} += (δz W_hh) ⊙ m. mu, rh: (N).
struct LNGRURows : GRURows {
  static constexpr int64_t SCRATCH(int64_t H) { return 6 * H; }
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    beta = T(0);
    return a.z + st.off * 3 * a.H;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T* hp, const T*, T*) {
    const int64_t H = a.H, G = 3 * H;
    ln_row(G, a.z + i * G, a.g_hh, a.b_ln, a.b_hh, a.eps, a.mu + i, a.rh + i, a.q + i * G);
    std::memcpy(a.acts + i * G, a.gi + i * G, G * sizeof(T));
    gru_fwd_row(H, a.acts + i * G, static_cast<const T*>(a.q + i * G), hp, a.S_h + i * H);
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T* hp, const T*, T* dhp, T*, T* tmp) {
    const int64_t H = a.H, G = 3 * H;
    gru_bwd_row(H, a.dS_h + i * H, a.acts + i * G, a.q + i * G, hp, a.dG + i * G, a.dGh + i * G,
                dhp);
    ln_back(static_cast<const T*>(a.dGh + i * G), a.z + i * G, a.mu[i], a.rh[i], a.g_hh, G,
            a.dZ + i * G, tmp);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dZ + o * 3 * a.H; }
};

}  // namespace

// ---- the kernels ------------------------------------------------------------------------------
// Step kernels (the Python loop's): acts (b, 3H) holds gi on entry and [r z n] on exit; gh =
// W_hh h_{t-1} + b_hh (b, 3H); h_prev may have any row stride (ld_hp; 0 for a broadcast).
#define RK_ARGS_gru_fwd(X) \
  X(i64, b) X(i64, H) X(out, acts) X(in, gh) X(in, hp) X(i64, ld_hp) X(out, h)
RK_KERNEL(gru_fwd) {
  const int64_t H = a.H;
  for (int64_t r = 0; r < a.b; ++r)
    gru_fwd_row(H, a.acts + r * 3 * H, a.gh + r * 3 * H, a.hp + r * a.ld_hp, a.h + r * H);
}

#define RK_ARGS_gru_bwd(X)                                                                     \
  X(i64, b) X(i64, H) X(in, dh) X(in, acts) X(in, gh) X(in, hp) X(i64, ld_hp) X(out, dgi)    \
  X(out, dgh) X(out, dhp)
RK_KERNEL(gru_bwd) {
  const int64_t H = a.H;
  for (int64_t r = 0; r < a.b; ++r)
    gru_bwd_row(H, a.dh + r * H, a.acts + r * 3 * H, a.gh + r * 3 * H, a.hp + r * a.ld_hp,
                a.dgi + r * 3 * H, a.dgh + r * 3 * H, a.dhp + r * H);
}

// Whole time loops (scaffold.h): acts (N, 3H) holds gi on entry (the plain GRU).
#define RK_ARGS_gru_fwd_loop(X) \
  RK_FWD_LOOP(X) X(opt, b_hh) X(out, acts) X(out, gh) X(out, S_h) X(in, h0)
RK_KERNEL(gru_fwd_loop) { forward_loop<GRURows>(a); }

#define RK_ARGS_gru_bwd_loop(X)                                                                \
  RK_BWD_LOOP(X) X(in, acts) X(in, gh) X(in, S_h) X(in, h0) X(out, dS_h) X(out, dG)          \
  X(out, dGh) X(out, dh0)
RK_KERNEL(gru_bwd_loop) { backward_loop<GRURows>(a); }

#define RK_ARGS_lngru_fwd_loop(X)                                                              \
  RK_FWD_LOOP(X) X(in, gi) X(in, g_hh) X(in, b_ln) X(opt, b_hh) X(out, acts) X(out, q)       \
  X(out, z) X(out, mu) X(out, rh) X(out, S_h) X(in, h0) X(real, eps)
RK_KERNEL(lngru_fwd_loop) { forward_loop<LNGRURows>(a); }

#define RK_ARGS_lngru_bwd_loop(X)                                                              \
  RK_BWD_LOOP(X) X(in, acts) X(in, q) X(in, z) X(in, mu) X(in, rh) X(in, g_hh) X(in, S_h)    \
  X(in, h0) X(out, dS_h) X(out, dG) X(out, dGh) X(out, dZ) X(out, dh0)
RK_KERNEL(lngru_bwd_loop) { backward_loop<LNGRURows>(a); }
