// Fused per-step kernels of the LSTM and the layer-normalised LSTM: one pass over a step's rows
// does what the Python cells (rnnkit/cells/lstm.py, lstm_ln.py) do in a dozen tensor ops.
//
// The maths is the cells' own, written out element by element; the Python cells remain the
// reference and the tests hold the two together. The recurrent matmuls stay torch's (GEMM);
// these kernels do everything between them. Rows are independent; within a row, columns are
// contiguous (row r of an (n, D) matrix starts at p + r * D). c_prev may have any row stride
// (ld_cp; 0 for an initial state broadcast over rows).
//
// Built by rnnkit/kernels/__init__.py with the system C++ compiler at first use; no torch
// headers, plain C ABI, float and double instantiations.
#include "common.h"

namespace {

// ---- LSTM --------------------------------------------------------------------------------
// Row bodies take their buffers as restrict arguments (distinct rows never overlap), which is
// what lets the compiler vectorise loops that read and write several buffers at once.

// a (4H) holds a_t on entry and [i f g o] on exit
template <typename T> inline void gates_row(int64_t H, T* RK a) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_(a[j]);             // i_t, f_t
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);            // g_t
  for (int64_t j = 3 * H; j < 4 * H; ++j) a[j] = sigmoid_(a[j]);         // o_t
}

// c_t = f_t c_{t-1} + i_t g_t
template <typename T>
inline void cell_row(int64_t H, const T* RK i, const T* RK f, const T* RK g, const T* RK cp,
                     T* RK c) {
  for (int64_t j = 0; j < H; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
}

// tanh(y) and h_t = o_t tanh(y) (y = c_t, or LN(c_t) already written into t)
template <typename T>
inline void out_row(int64_t H, const T* RK o, T* RK t, T* RK h) {
  for (int64_t j = 0; j < H; ++j) t[j] = tanh_(t[j]);
  for (int64_t j = 0; j < H; ++j) h[j] = o[j] * t[j];
}

// The gate derivatives from the complete δc_t (dc) and δh_t; t = tanh(c_t) (or tanh(LN(c_t))).
template <typename T>
inline void gate_grads_row(int64_t H, const T* RK i, const T* RK f, const T* RK g, const T* RK o,
                           const T* RK dh, const T* RK dc, const T* RK t, const T* RK cp,
                           T* RK di, T* RK df, T* RK dg, T* RK d_o, T* RK dcp) {
  for (int64_t j = 0; j < H; ++j) {
    di[j] = dc[j] * g[j] * i[j] * (T(1) - i[j]);                          // δa^i = δc g σ'(a^i)
    df[j] = dc[j] * cp[j] * f[j] * (T(1) - f[j]);                         // δa^f = δc c_{t-1} σ'
    dg[j] = dc[j] * i[j] * (T(1) - g[j] * g[j]);                          // δa^g = δc i tanh'
    d_o[j] = dh[j] * t[j] * o[j] * (T(1) - o[j]);                         // δa^o = δh t σ'(a^o)
    dcp[j] += dc[j] * f[j];                                               // δc_{t-1} += δc_t f_t
  }
}

// δc_t += δh_t o_t (1 - tanh² c_t)
template <typename T>
inline void dc_row(int64_t H, const T* RK dh, const T* RK o, const T* RK t, T* RK dc) {
  for (int64_t j = 0; j < H; ++j) dc[j] += dh[j] * o[j] * (T(1) - t[j] * t[j]);
}

// acts (b, 4H) holds a_t on entry and [i f g o] on exit; writes c_t, h_t, tanh(c_t).
template <typename T>
void lstm_fwd(int64_t b, int64_t H, T* acts, const T* cp, int64_t ld_cp, T* c, T* h, T* tc) {
  for (int64_t r = 0; r < b; ++r) {
    T* a = acts + r * 4 * H;
    T *cr = c + r * H, *tr = tc + r * H;
    gates_row(H, a);
    cell_row(H, a, a + H, a + 2 * H, cp + r * ld_cp, cr);
    std::memcpy(tr, cr, H * sizeof(T));
    out_row(H, a + 3 * H, tr, h + r * H);
  }
}

// dc (b, H) holds δc_t from later steps; adds δh_t's share, writes δa_t into da (b, 4H) and adds
// δc_t f_t into dcp (δc_{t-1}).
template <typename T>
void lstm_bwd(int64_t b, int64_t H, const T* dh, T* dc, const T* acts, const T* tc, const T* cp,
              int64_t ld_cp, T* da, T* dcp) {
  for (int64_t r = 0; r < b; ++r) {
    const T* a = acts + r * 4 * H;
    const T *dhr = dh + r * H, *tr = tc + r * H;
    T *dcr = dc + r * H, *d = da + r * 4 * H;
    dc_row(H, dhr, a + 3 * H, tr, dcr);
    gate_grads_row(H, a, a + H, a + 2 * H, a + 3 * H, dhr, dcr, tr, cp + r * ld_cp, d, d + H,
                   d + 2 * H, d + 3 * H, dcp + r * H);
  }
}

// ---- layer-normalised LSTM ------------------------------------------------------------------
// a_t = gi + LN(z; γ_hh, β_hh), z = W_hh h_{t-1} (b, 4H); c_t as the LSTM; h_t = o tanh(LN(c_t)).

template <typename T>
void lnlstm_fwd(int64_t b, int64_t H, const T* gi, const T* z, const T* g_hh, const T* b_hh,
                const T* g_c, const T* b_c, const T* cp, int64_t ld_cp, T* acts, T* mh, T* rh,
                T* mc, T* rc, T* ty, T* c, T* h, T eps) {
  const int64_t G = 4 * H;
  for (int64_t r = 0; r < b; ++r) {
    const T* zr = z + r * G;
    T *a = acts + r * G, *cr = c + r * H, *yr = ty + r * H;
    ln_stats(zr, G, eps, mh + r, rh + r);
    ln_apply_row(G, zr, mh[r], rh[r], g_hh, b_hh, gi + r * G, a);       // a_t = gi + LN(z)
    gates_row(H, a);
    cell_row(H, a, a + H, a + 2 * H, cp + r * ld_cp, cr);                // c_t
    ln_stats(cr, H, eps, mc + r, rc + r);
    ln_apply_row(H, cr, mc[r], rc[r], g_c, b_c, static_cast<const T*>(nullptr), yr);  // y_t
    out_row(H, a + 3 * H, yr, h + r * H);                                // h_t = o_t tanh(y_t)
  }
}

// δy = δh o tanh'(y)
template <typename T>
inline void dy_row(int64_t H, const T* RK dh, const T* RK o, const T* RK t, T* RK dy) {
  for (int64_t j = 0; j < H; ++j) dy[j] = dh[j] * o[j] * (T(1) - t[j] * t[j]);
}

template <typename T> inline void add_row(int64_t D, const T* RK x, T* RK y) {
  for (int64_t j = 0; j < D; ++j) y[j] += x[j];
}

// Writes δy_t (kept for δγ_c, δβ_c), δa_t into da and δz_t = LN'(δa_t) into dz; adds into δc_t
// (dc, in place) and δc_{t-1} (dcp).
template <typename T>
void lnlstm_bwd(int64_t b, int64_t H, const T* dh, T* dc, const T* acts, const T* ty,
                const T* c, const T* mc, const T* rc, const T* g_c, const T* cp, int64_t ld_cp,
                const T* z, const T* mh, const T* rh, const T* g_hh, T* dy, T* da, T* dz,
                T* dcp) {
  const int64_t G = 4 * H;
  std::vector<T>& tmp = scratch<T>(2 * G + H);
  T* dln = tmp.data() + 2 * G;
  for (int64_t r = 0; r < b; ++r) {
    const T *a = acts + r * G, *dhr = dh + r * H, *yr = ty + r * H;
    T *dcr = dc + r * H, *dyr = dy + r * H, *d = da + r * G;
    dy_row(H, dhr, a + 3 * H, yr, dyr);                                  // δy_t
    ln_back(dyr, c + r * H, mc[r], rc[r], g_c, H, dln, tmp.data());     // δc_t += LN'(δy_t)
    add_row(H, static_cast<const T*>(dln), dcr);
    gate_grads_row(H, a, a + H, a + 2 * H, a + 3 * H, dhr, static_cast<const T*>(dcr), yr,
                   cp + r * ld_cp, d, d + H, d + 2 * H, d + 3 * H, dcp + r * H);
    ln_back(d, z + r * G, mh[r], rh[r], g_hh, G, dz + r * G, tmp.data()); // δz_t = LN'(δa_t)
  }
}

template <typename T>
inline void ln_param_row(int64_t D, const T* RK dy, const T* RK z, T m, T s, T* RK dgamma,
                         T* RK dbeta) {
  for (int64_t j = 0; j < D; ++j) {
    dgamma[j] += dy[j] * (z[j] - m) * s;
    dbeta[j] += dy[j];
  }
}

// δγ = Σ_rows δy ⊙ x̂ and δβ = Σ_rows δy over n rows, x̂ = (z - μ) / σ formed on the fly.
template <typename T>
void ln_param_grads(int64_t n, int64_t D, const T* dy, const T* z, const T* mu, const T* rstd,
                    T* dgamma, T* dbeta) {
  for (int64_t j = 0; j < D; ++j) dgamma[j] = dbeta[j] = T(0);
  for (int64_t r = 0; r < n; ++r) ln_param_row(D, dy + r * D, z + r * D, mu[r], rstd[r], dgamma, dbeta);
}

// ---- the LSTM's time loops -------------------------------------------------------------------
// Forward over the plan: a_t += h^r_{t-1} W_hh^T (GEMM) then the fused step, for every step; acts
// (N, 4H) holds the input half on entry. S_h, S_c, tc: (N, H); h0, c0: (B, H) contiguous; mask:
// the recurrent-dropout mask (B, H) or null.
template <typename T>
void lstm_fwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh_t,
                   const T* mask, T* acts, T* S_h, T* S_c, T* tc, const T* h0, const T* c0) {
  const int64_t B = max_rows(plan, n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  T* cb = scratch<T, 3>(B * H).data();
  for (int64_t s = 0; s < n_steps; ++s) {
    const Step& st = plan[s];
    const T* hp = entering(st, H, S_h, h0, hb);
    const T* cp = entering(st, H, S_c, c0, cb);
    T* a = acts + st.off * 4 * H;
    gemm_rows<T>(gemm, st.b, 4 * H, H, masked_rows(st.b, H, hp, mask, hr), H, w_hh_t, 4 * H, T(1),
                 a, 4 * H);
    lstm_fwd(st.b, H, a, cp, H, S_c + st.off * H, S_h + st.off * H, tc + st.off * H);
  }
}

// Backward over the plan in reverse: the fused step writes δa_t (dG) and adds δc_t f_t into
// δc_{t-1}; then δh_{t-1} += (δa_t W_hh) ⊙ m (GEMM). dS_h, dS_c (N, H) hold the gradients from
// above and collect those of earlier steps; dh0, dc0 (B, H) those of the initial states.
template <typename T>
void lstm_bwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh,
                   const T* mask, const T* acts, const T* S_c, const T* tc, const T* c0, T* dS_h,
                   T* dS_c, T* dG, T* dh0, T* dc0) {
  const int64_t B = max_rows(plan, n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *cb = scratch<T, 3>(B * H).data();
  T *dhb = scratch<T, 4>(B * H).data(), *dcb = scratch<T, 5>(B * H).data();
  for (int64_t s = n_steps - 1; s >= 0; --s) {
    const Step& st = plan[s];
    const T* cp = entering(st, H, S_c, c0, cb);
    T* dhp = entering_grad(st, H, dS_h, dh0, dhb);
    T* dcp = entering_grad(st, H, dS_c, dc0, dcb);
    T* da = dG + st.off * 4 * H;
    lstm_bwd(st.b, H, dS_h + st.off * H, dS_c + st.off * H, acts + st.off * 4 * H,
             tc + st.off * H, cp, H, da, dcp);
    rows_times_w_into(gemm, st.b, H, 4 * H, da, w_hh, mask, dhr, dhp);
    scatter_grad(st, H, dhp, dS_h, dh0);
    scatter_grad(st, H, dcp, dS_c, dc0);
  }
}

// The layer-normalised LSTM's loops: z_t = h^r_{t-1} W_hh^T (GEMM) into z, then the fused step;
// backward the fused step (δz_t into dGh), then δh_{t-1} += (δz_t W_hh) ⊙ m. mh, rh, mc, rc (N).
template <typename T>
void lnlstm_fwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh_t,
                     const T* mask, const T* gi, const T* g_hh, const T* b_hh, const T* g_c,
                     const T* b_c, T* acts, T* z, T* mh, T* rh, T* mc, T* rc, T* ty, T* S_h,
                     T* S_c, const T* h0, const T* c0, T eps) {
  const int64_t G = 4 * H;
  const int64_t B = max_rows(plan, n_steps);
  T *hr = scratch<T, 1>(B * H).data(), *hb = scratch<T, 2>(B * H).data();
  T* cb = scratch<T, 3>(B * H).data();
  for (int64_t s = 0; s < n_steps; ++s) {
    const Step& st = plan[s];
    const int64_t o = st.off;
    const T* hp = entering(st, H, S_h, h0, hb);
    const T* cp = entering(st, H, S_c, c0, cb);
    gemm_rows<T>(gemm, st.b, G, H, masked_rows(st.b, H, hp, mask, hr), H, w_hh_t, G, T(0),
                 z + o * G, G);
    lnlstm_fwd(st.b, H, gi + o * G, z + o * G, g_hh, b_hh, g_c, b_c, cp, H, acts + o * G, mh + o,
               rh + o, mc + o, rc + o, ty + o * H, S_c + o * H, S_h + o * H, eps);
  }
}

template <typename T>
void lnlstm_bwd_loop(void* gemm, int64_t n_steps, const Step* plan, int64_t H, const T* w_hh,
                     const T* mask, const T* acts, const T* ty, const T* S_c, const T* mc,
                     const T* rc, const T* g_c, const T* z, const T* mh, const T* rh,
                     const T* g_hh, const T* c0, T* dS_h, T* dS_c, T* dy, T* dG, T* dGh, T* dh0,
                     T* dc0) {
  const int64_t G = 4 * H;
  const int64_t B = max_rows(plan, n_steps);
  T *dhr = scratch<T, 1>(B * H).data(), *cb = scratch<T, 3>(B * H).data();
  T *dhb = scratch<T, 4>(B * H).data(), *dcb = scratch<T, 5>(B * H).data();
  for (int64_t s = n_steps - 1; s >= 0; --s) {
    const Step& st = plan[s];
    const int64_t o = st.off;
    const T* cp = entering(st, H, S_c, c0, cb);
    T* dhp = entering_grad(st, H, dS_h, dh0, dhb);
    T* dcp = entering_grad(st, H, dS_c, dc0, dcb);
    lnlstm_bwd(st.b, H, dS_h + o * H, dS_c + o * H, acts + o * G, ty + o * H, S_c + o * H, mc + o,
               rc + o, g_c, cp, H, z + o * G, mh + o, rh + o, g_hh, dy + o * H, dG + o * G,
               dGh + o * G, dcp);
    rows_times_w_into(gemm, st.b, H, G, dGh + o * G, w_hh, mask, dhr, dhp);
    scatter_grad(st, H, dhp, dS_h, dh0);
    scatter_grad(st, H, dcp, dS_c, dc0);
  }
}

}  // namespace

// ---- C ABI: <kernel>_f32 / <kernel>_f64 ------------------------------------------------------
#define RK_EXPORT(T, SFX)                                                                          \
  extern "C" void rk_lstm_fwd_##SFX(int64_t b, int64_t H, T* acts, const T* cp, int64_t ld_cp,  \
                                    T* c, T* h, T* tc) {                                          \
    lstm_fwd<T>(b, H, acts, cp, ld_cp, c, h, tc);                                                  \
  }                                                                                                \
  extern "C" void rk_lstm_bwd_##SFX(int64_t b, int64_t H, const T* dh, T* dc, const T* acts,    \
                                    const T* tc, const T* cp, int64_t ld_cp, T* da, T* dcp) {     \
    lstm_bwd<T>(b, H, dh, dc, acts, tc, cp, ld_cp, da, dcp);                                       \
  }                                                                                                \
  extern "C" void rk_lnlstm_fwd_##SFX(int64_t b, int64_t H, const T* gi, const T* z,            \
                                      const T* g_hh, const T* b_hh, const T* g_c, const T* b_c,   \
                                      const T* cp, int64_t ld_cp, T* acts, T* mh, T* rh, T* mc,   \
                                      T* rc, T* ty, T* c, T* h, double eps) {                     \
    lnlstm_fwd<T>(b, H, gi, z, g_hh, b_hh, g_c, b_c, cp, ld_cp, acts, mh, rh, mc, rc, ty, c, h,   \
                  T(eps));                                                                         \
  }                                                                                                \
  extern "C" void rk_lnlstm_bwd_##SFX(int64_t b, int64_t H, const T* dh, T* dc, const T* acts,  \
                                      const T* ty, const T* c, const T* mc, const T* rc,          \
                                      const T* g_c, const T* cp, int64_t ld_cp, const T* z,       \
                                      const T* mh, const T* rh, const T* g_hh, T* dy, T* da,      \
                                      T* dz, T* dcp) {                                            \
    lnlstm_bwd<T>(b, H, dh, dc, acts, ty, c, mc, rc, g_c, cp, ld_cp, z, mh, rh, g_hh, dy, da, dz, \
                  dcp);                                                                            \
  }                                                                                                \
  extern "C" void rk_ln_param_grads_##SFX(int64_t n, int64_t D, const T* dy, const T* z,        \
                                          const T* mu, const T* rstd, T* dgamma, T* dbeta) {      \
    ln_param_grads<T>(n, D, dy, z, mu, rstd, dgamma, dbeta);                                       \
  }

#define RK_EXPORT_LOOPS(T, SFX)                                                                    \
  extern "C" void rk_lstm_fwd_loop_##SFX(void* gemm, int64_t n, const Step* plan, int64_t H,     \
                                         const T* w_hh_t, const T* mask, T* acts, T* S_h, T* S_c, \
                                         T* tc, const T* h0, const T* c0) {                       \
    lstm_fwd_loop<T>(gemm, n, plan, H, w_hh_t, mask, acts, S_h, S_c, tc, h0, c0);                 \
  }                                                                                                \
  extern "C" void rk_lstm_bwd_loop_##SFX(void* gemm, int64_t n, const Step* plan, int64_t H,     \
                                         const T* w_hh, const T* mask, const T* acts,             \
                                         const T* S_c, const T* tc, const T* c0, T* dS_h,         \
                                         T* dS_c, T* dG, T* dh0, T* dc0) {                        \
    lstm_bwd_loop<T>(gemm, n, plan, H, w_hh, mask, acts, S_c, tc, c0, dS_h, dS_c, dG, dh0, dc0);  \
  }                                                                                                \
  extern "C" void rk_lnlstm_fwd_loop_##SFX(                                                        \
      void* gemm, int64_t n, const Step* plan, int64_t H, const T* w_hh_t, const T* mask,        \
      const T* gi, const T* g_hh, const T* b_hh, const T* g_c, const T* b_c, T* acts, T* z,      \
      T* mh, T* rh, T* mc, T* rc, T* ty, T* S_h, T* S_c, const T* h0, const T* c0, double eps) { \
    lnlstm_fwd_loop<T>(gemm, n, plan, H, w_hh_t, mask, gi, g_hh, b_hh, g_c, b_c, acts, z, mh, rh, \
                       mc, rc, ty, S_h, S_c, h0, c0, T(eps));                                      \
  }                                                                                                \
  extern "C" void rk_lnlstm_bwd_loop_##SFX(                                                        \
      void* gemm, int64_t n, const Step* plan, int64_t H, const T* w_hh, const T* mask,          \
      const T* acts, const T* ty, const T* S_c, const T* mc, const T* rc, const T* g_c,          \
      const T* z, const T* mh, const T* rh, const T* g_hh, const T* c0, T* dS_h, T* dS_c, T* dy, \
      T* dG, T* dGh, T* dh0, T* dc0) {                                                             \
    lnlstm_bwd_loop<T>(gemm, n, plan, H, w_hh, mask, acts, ty, S_c, mc, rc, g_c, z, mh, rh, g_hh, \
                       c0, dS_h, dS_c, dy, dG, dGh, dh0, dc0);                                     \
  }

#define RK_EXPORT_GEMM(T, SFX)                                                                     \
  extern "C" void rk_gemm_rows_##SFX(void* gemm, int64_t b, int64_t n, int64_t k, const T* A,    \
                                     int64_t lda, const T* B, int64_t ldb, double beta, T* C,     \
                                     int64_t ldc) {                                               \
    gemm_rows<T>(gemm, b, n, k, A, lda, B, ldb, T(beta), C, ldc);                                  \
  }

RK_EXPORT_GEMM(float, f32)
RK_EXPORT_GEMM(double, f64)
RK_EXPORT_LOOPS(float, f32)
RK_EXPORT_LOOPS(double, f64)
RK_EXPORT(float, f32)
RK_EXPORT(double, f64)
