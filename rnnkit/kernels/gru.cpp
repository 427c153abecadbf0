// Fused per-step kernels of the GRU (torch.nn.GRU's reset-after form; rnnkit/cells/gru.py):
//
//   r = σ(gi^r + gh^r)   z = σ(gi^z + gh^z)   n = tanh(gi^n + r ⊙ gh^n)   h = n + z ⊙ (h_{t-1} - n)
//
// gi: the input half (b, 3H); gh = W_hh h_{t-1} + b_hh (b, 3H), torch's matmul. Rows as in
// lstm.cpp; h_prev may have any row stride (ld_hp; 0 for a broadcast initial state).
#include "common.h"

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

template <typename T>
void gru_fwd(int64_t b, int64_t H, T* acts, const T* gh, const T* hp, int64_t ld_hp, T* h) {
  for (int64_t r = 0; r < b; ++r)
    gru_fwd_row(H, acts + r * 3 * H, gh + r * 3 * H, hp + r * ld_hp, h + r * H);
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

template <typename T>
void gru_bwd(int64_t b, int64_t H, const T* dh, const T* acts, const T* gh, const T* hp,
             int64_t ld_hp, T* dgi, T* dgh, T* dhp) {
  for (int64_t r = 0; r < b; ++r) {
    const T* a = acts + r * 3 * H;
    T *di = dgi + r * 3 * H, *dg = dgh + r * 3 * H;
    gru_bwd_row(H, dh + r * H, a, a + H, a + 2 * H, gh + r * 3 * H + 2 * H, hp + r * ld_hp, di,
                di + H, di + 2 * H, dg, dg + H, dg + 2 * H, dhp + r * H);
  }
}

// The GRU's time loops, as the LSTM's (lstm.cpp): gh_t = h_{t-1} W_hh^T + b_hh (GEMM; b_hh may
// be null), the fused step; backward the fused step, then δh_{t-1} += δ(gh)_t W_hh.
template <typename T>
void gru_fwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh_t,
                  const T* mask, const T* b_hh, T* acts, T* gh, T* S_h, const T* h0) {
  const int64_t G = 3 * H;
  const int64_t B = max_rows(plan, n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  for (int64_t s = 0; s < n_steps; ++s) {
    const Step& st = plan[s];
    const T* hp = entering(st, H, S_h, h0, hb);
    T* g = gh + st.off * G;
    if (b_hh)
      for (int64_t r = 0; r < st.b; ++r) std::memcpy(g + r * G, b_hh, G * sizeof(T));
    gemm_rows<T>(gemm, st.b, G, H, masked_rows(st.b, H, hp, mask, hr), H, w_hh_t, G,
                 T(b_hh ? 1 : 0), g, G);
    gru_fwd(st.b, H, acts + st.off * G, g, hp, H, S_h + st.off * H);
  }
}

template <typename T>
void gru_bwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh,
                  const T* mask, const T* acts, const T* gh, const T* S_h, const T* h0, T* dS_h,
                  T* dG, T* dGh, T* dh0) {
  const int64_t G = 3 * H;
  const int64_t B = max_rows(plan, n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  T* dhb = scratch<T, 4>(B * H).data();
  for (int64_t s = n_steps - 1; s >= 0; --s) {
    const Step& st = plan[s];
    const T* hp = entering(st, H, S_h, h0, hb);
    T* dhp = entering_grad(st, H, dS_h, dh0, dhb);
    T* dgh = dGh + st.off * G;
    gru_bwd(st.b, H, dS_h + st.off * H, acts + st.off * G, gh + st.off * G, hp, H,
            dG + st.off * G, dgh, dhp);
    rows_times_w_into(gemm, st.b, H, G, dgh, w_hh, mask, dhr, dhp);
    scatter_grad(st, H, dhp, dS_h, dh0);
  }
}

// The layer-normalised GRU's loops (rnnkit/cells/gru_ln.py): z_t = h^r_{t-1} W_hh^T (GEMM),
// q_t = LN(z_t) + b_hh, then the GRU step with q_t for gh (acts takes a copy of gi first).
// Backward: the GRU step gives δâ (dG) and δq (dGh); δz = LN'(δq) (dZ); δh_{t-1} += (δz W_hh) ⊙ m.
template <typename T>
void lngru_fwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh_t,
                    const T* mask, const T* gi, const T* g_hh, const T* b_ln, const T* b_hh,
                    T* acts, T* q, T* z, T* mu, T* rh, T* S_h, const T* h0, T eps) {
  const int64_t G = 3 * H;
  const int64_t B = max_rows(plan, n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  for (int64_t s = 0; s < n_steps; ++s) {
    const Step& st = plan[s];
    const int64_t o = st.off;
    const T* hp = entering(st, H, S_h, h0, hb);
    gemm_rows<T>(gemm, st.b, G, H, masked_rows(st.b, H, hp, mask, hr), H, w_hh_t, G, T(0),
                 z + o * G, G);
    for (int64_t r = 0; r < st.b; ++r)
      ln_row(G, z + (o + r) * G, g_hh, b_ln, b_hh, eps, mu + o + r, rh + o + r, q + (o + r) * G);
    std::memcpy(acts + o * G, gi + o * G, st.b * G * sizeof(T));
    gru_fwd(st.b, H, acts + o * G, q + o * G, hp, H, S_h + o * H);
  }
}

template <typename T>
void lngru_bwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh,
                    const T* mask, const T* acts, const T* q, const T* z, const T* mu,
                    const T* rh, const T* g_hh, const T* S_h, const T* h0, T* dS_h, T* dG,
                    T* dGh, T* dZ, T* dh0) {
  const int64_t G = 3 * H;
  const int64_t B = max_rows(plan, n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  T *dhb = scratch<T, 4>(B * H).data(), *tmp = scratch<T, 6>(2 * G).data();
  for (int64_t s = n_steps - 1; s >= 0; --s) {
    const Step& st = plan[s];
    const int64_t o = st.off;
    const T* hp = entering(st, H, S_h, h0, hb);
    T* dhp = entering_grad(st, H, dS_h, dh0, dhb);
    gru_bwd(st.b, H, dS_h + o * H, acts + o * G, q + o * G, hp, H, dG + o * G, dGh + o * G, dhp);
    for (int64_t r = 0; r < st.b; ++r)
      ln_back(dGh + (o + r) * G, z + (o + r) * G, mu[o + r], rh[o + r], g_hh, G,
              dZ + (o + r) * G, tmp);
    rows_times_w_into(gemm, st.b, H, G, dZ + o * G, w_hh, mask, dhr, dhp);
    scatter_grad(st, H, dhp, dS_h, dh0);
  }
}

}  // namespace

#define RK_EXPORT_LNGRU(T, SFX)                                                                    \
  extern "C" void rk_lngru_fwd_loop_##SFX(                                                         \
      void* gemm, int64_t n, const Step* plan, int64_t H, const T* w_hh_t, const T* mask,        \
      const T* gi, const T* g_hh, const T* b_ln, const T* b_hh, T* acts, T* q, T* z, T* mu,      \
      T* rh, T* S_h, const T* h0, double eps) {                                                   \
    lngru_fwd_loop<T>(gemm, n, plan, H, w_hh_t, mask, gi, g_hh, b_ln, b_hh, acts, q, z, mu, rh,   \
                      S_h, h0, T(eps));                                                            \
  }                                                                                                \
  extern "C" void rk_lngru_bwd_loop_##SFX(                                                         \
      void* gemm, int64_t n, const Step* plan, int64_t H, const T* w_hh, const T* mask,          \
      const T* acts, const T* q, const T* z, const T* mu, const T* rh, const T* g_hh,            \
      const T* S_h, const T* h0, T* dS_h, T* dG, T* dGh, T* dZ, T* dh0) {                        \
    lngru_bwd_loop<T>(gemm, n, plan, H, w_hh, mask, acts, q, z, mu, rh, g_hh, S_h, h0, dS_h, dG,  \
                      dGh, dZ, dh0);                                                               \
  }

RK_EXPORT_LNGRU(float, f32)
RK_EXPORT_LNGRU(double, f64)

#define RK_EXPORT_GRU(T, SFX)                                                                      \
  extern "C" void rk_gru_fwd_##SFX(int64_t b, int64_t H, T* acts, const T* gh, const T* hp,     \
                                   int64_t ld_hp, T* h) {                                         \
    gru_fwd<T>(b, H, acts, gh, hp, ld_hp, h);                                                      \
  }                                                                                                \
  extern "C" void rk_gru_bwd_##SFX(int64_t b, int64_t H, const T* dh, const T* acts,            \
                                   const T* gh, const T* hp, int64_t ld_hp, T* dgi, T* dgh,       \
                                   T* dhp) {                                                      \
    gru_bwd<T>(b, H, dh, acts, gh, hp, ld_hp, dgi, dgh, dhp);                                      \
  }

#define RK_EXPORT_GRU_LOOPS(T, SFX)                                                                \
  extern "C" void rk_gru_fwd_loop_##SFX(void* gemm, int64_t n, const Step* plan, int64_t H,      \
                                        const T* w_hh_t, const T* mask, const T* b_hh, T* acts,   \
                                        T* gh, T* S_h, const T* h0) {                             \
    gru_fwd_loop<T>(gemm, n, plan, H, w_hh_t, mask, b_hh, acts, gh, S_h, h0);                     \
  }                                                                                                \
  extern "C" void rk_gru_bwd_loop_##SFX(void* gemm, int64_t n, const Step* plan, int64_t H,      \
                                        const T* w_hh, const T* mask, const T* acts, const T* gh, \
                                        const T* S_h, const T* h0, T* dS_h, T* dG, T* dGh,        \
                                        T* dh0) {                                                 \
    gru_bwd_loop<T>(gemm, n, plan, H, w_hh, mask, acts, gh, S_h, h0, dS_h, dG, dGh, dh0);         \
  }

RK_EXPORT_GRU_LOOPS(float, f32)
RK_EXPORT_GRU_LOOPS(double, f64)
RK_EXPORT_GRU(float, f32)
RK_EXPORT_GRU(double, f64)
