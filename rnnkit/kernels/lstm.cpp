// Fused per-step kernels of the LSTM and the layer-normalised LSTM: one pass over a step's rows
// does what the Python cells (rnnkit/cells/lstm.py, lstm_ln.py) do in a dozen tensor ops.
//
// The maths is the cells' own, written out element by element; the Python cells remain the
// reference and the tests hold the two together. The recurrent matmuls stay torch's (GEMM);
// these kernels do everything between them. Rows are independent; within a row, columns are
// contiguous (row r of an (n, D) matrix starts at p + r * D). c_prev may have any row stride
// (ld_cp; 0 for an initial state broadcast over rows).
//
// Each kernel's arguments are declared once (RK_ARGS_<kernel>, declare.h); the time loops are
// the scaffold's (scaffold.h) with the rows below. Built by rnnkit/kernels/__init__.py with the
// system C++ compiler at first use; no torch headers, plain C ABI, float and double.
#include "scaffold.h"

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

// ---- one row of the LSTM -----------------------------------------------------------------
// a (4H) holds a_t on entry and [i f g o] on exit; writes c_t, h_t, tanh(c_t) (t).
template <typename T>
inline void lstm_fwd_row(int64_t H, T* a, const T* cp, T* c, T* h, T* t) {
  gates_row(H, a);
  cell_row(H, a, a + H, a + 2 * H, cp, c);
  std::memcpy(t, c, H * sizeof(T));
  out_row(H, a + 3 * H, t, h);
}

// dc holds δc_t from later steps; adds δh_t's share, writes δa_t into d (4H) and adds δc_t f_t
// into dcp (δc_{t-1}).
template <typename T>
inline void lstm_bwd_row(int64_t H, const T* dh, T* dc, const T* a, const T* t, const T* cp, T* d,
                         T* dcp) {
  dc_row(H, dh, a + 3 * H, t, dc);
  gate_grads_row(H, a, a + H, a + 2 * H, a + 3 * H, dh, static_cast<const T*>(dc), t, cp, d,
                 d + H, d + 2 * H, d + 3 * H, dcp);
}

// ---- one row of the layer-normalised LSTM -----------------------------------------------------
// a_t = gi + LN(z; γ_hh, β_hh), z = W_hh h_{t-1} (4H); c_t as the LSTM; h_t = o tanh(LN(c_t)).
// Records the rows' μ and 1/σ (mh, rh of z; mc, rc of c_t) and y = tanh(LN(c_t)) (ty).

template <typename T>
inline void lnlstm_fwd_row(int64_t H, const T* gi, const T* z, const T* g_hh, const T* b_hh,
                           const T* g_c, const T* b_c, const T* cp, T* a, T* mh, T* rh, T* mc,
                           T* rc, T* y, T* c, T* h, T eps) {
  const int64_t G = 4 * H;
  ln_stats(z, G, eps, mh, rh);
  ln_apply_row(G, z, *mh, *rh, g_hh, b_hh, gi, a);                      // a_t = gi + LN(z)
  gates_row(H, a);
  cell_row(H, a, a + H, a + 2 * H, cp, c);                              // c_t
  ln_stats(c, H, eps, mc, rc);
  ln_apply_row(H, c, *mc, *rc, g_c, b_c, static_cast<const T*>(nullptr), y);  // y_t
  out_row(H, a + 3 * H, y, h);                                          // h_t = o_t tanh(y_t)
}

// δy = δh o tanh'(y)
template <typename T>
inline void dy_row(int64_t H, const T* RK dh, const T* RK o, const T* RK t, T* RK dy) {
  for (int64_t j = 0; j < H; ++j) dy[j] = dh[j] * o[j] * (T(1) - t[j] * t[j]);
}

template <typename T> inline void add_row(int64_t D, const T* RK x, T* RK y) {
  for (int64_t j = 0; j < D; ++j) y[j] += x[j];
}

// Writes δy_t (kept for δγ_c, δβ_c), δa_t into d and δz_t = LN'(δa_t) into dz; adds into δc_t
// (dc, in place) and δc_{t-1} (dcp). tmp: 2·4H + H scratch.
template <typename T>
inline void lnlstm_bwd_row(int64_t H, const T* dh, T* dc, const T* a, const T* y, const T* c,
                           T mc, T rc, const T* g_c, const T* cp, const T* z, T mh, T rh,
                           const T* g_hh, T* dy, T* d, T* dz, T* dcp, T* tmp) {
  const int64_t G = 4 * H;
  T* dln = tmp + 2 * G;
  dy_row(H, dh, a + 3 * H, y, dy);                                      // δy_t
  ln_back(static_cast<const T*>(dy), c, mc, rc, g_c, H, dln, tmp);     // δc_t += LN'(δy_t)
  add_row(H, static_cast<const T*>(dln), dc);
  gate_grads_row(H, a, a + H, a + 2 * H, a + 3 * H, dh, static_cast<const T*>(dc), y, cp, d,
                 d + H, d + 2 * H, d + 3 * H, dcp);
  ln_back(static_cast<const T*>(d), z, mh, rh, g_hh, G, dz, tmp);      // δz_t = LN'(δa_t)
}

template <typename T>
inline void ln_param_row(int64_t D, const T* RK dy, const T* RK z, T m, T s, T* RK dgamma,
                         T* RK dbeta) {
  for (int64_t j = 0; j < D; ++j) {
    dgamma[j] += dy[j] * (z[j] - m) * s;
    dbeta[j] += dy[j];
  }
}

// ---- the time loops' rows (scaffold.h) ---------------------------------------------------------
// Forward: a_t += h^r_{t-1} W_hh^T (acts holds the input half on entry), then the row. S_h, S_c,
// tc: (N, H); acts (N, 4H). Backward: the row writes δa_t (dG) and adds δc_t f_t into δc_{t-1};
// δh_{t-1} += (δa_t W_hh) ⊙ m.
struct LSTMRows : RowPolicy {
  static constexpr int K = 2, GATES = 4;
  static constexpr bool PREV_C = true;
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    beta = T(1);
    return a.acts + st.off * 4 * a.H;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T*, const T* cp, T*) {
    const int64_t H = a.H;
    lstm_fwd_row(H, a.acts + i * 4 * H, cp, a.S_c + i * H, a.S_h + i * H, a.tc + i * H);
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T*, const T* cp, T*, T* dcp, T*) {
    const int64_t H = a.H;
    lstm_bwd_row(H, a.dS_h + i * H, a.dS_c + i * H, a.acts + i * 4 * H, a.tc + i * H, cp,
                 a.dG + i * 4 * H, dcp);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dG + o * 4 * a.H; }
};

// The layer-normalised LSTM: z_t = h^r_{t-1} W_hh^T (GEMM) into z, then the row; backward the
// row (δz_t into dGh), then δh_{t-1} += (δz_t W_hh) ⊙ m. mh, rh, mc, rc: (N).
struct LNLSTMRows : LSTMRows {
  static constexpr int64_t SCRATCH(int64_t H) { return 9 * H; }
  template <class A, class T> static T* gemm_into(const A& a, const Step& st, T& beta) {
    beta = T(0);
    return a.z + st.off * 4 * a.H;
  }
  template <class A, class T>
  static void forward_row(const A& a, int64_t i, const T*, const T* cp, T*) {
    const int64_t H = a.H, G = 4 * H;
    lnlstm_fwd_row(H, a.gi + i * G, a.z + i * G, a.g_hh, a.b_hh, a.g_c, a.b_c, cp, a.acts + i * G,
                   a.mh + i, a.rh + i, a.mc + i, a.rc + i, a.ty + i * H, a.S_c + i * H,
                   a.S_h + i * H, a.eps);
  }
  template <class A, class T>
  static void backward_row(const A& a, int64_t i, const T*, const T* cp, T*, T* dcp, T* tmp) {
    const int64_t H = a.H, G = 4 * H;
    lnlstm_bwd_row(H, a.dS_h + i * H, a.dS_c + i * H, a.acts + i * G, a.ty + i * H,
                   a.S_c + i * H, a.mc[i], a.rc[i], a.g_c, cp, a.z + i * G, a.mh[i], a.rh[i],
                   a.g_hh, a.dy + i * H, a.dG + i * G, a.dGh + i * G, dcp, tmp);
  }
  template <class A> static auto gemm_grad(const A& a, int64_t o) { return a.dGh + o * 4 * a.H; }
};

}  // namespace

// ---- the kernels ------------------------------------------------------------------------------
// Step kernels: one step's rows (the Python loop's, where resets or zoneout act between steps).
// Rows are independent; c_prev may have any row stride (ld_cp; 0 for a broadcast initial state).

// acts (b, 4H) holds a_t on entry and [i f g o] on exit; writes c_t, h_t, tanh(c_t).
#define RK_ARGS_lstm_fwd(X) \
  X(i64, b) X(i64, H) X(out, acts) X(in, cp) X(i64, ld_cp) X(out, c) X(out, h) X(out, tc)
RK_KERNEL(lstm_fwd) {
  const int64_t H = a.H;
  for (int64_t r = 0; r < a.b; ++r)
    lstm_fwd_row(H, a.acts + r * 4 * H, a.cp + r * a.ld_cp, a.c + r * H, a.h + r * H,
                 a.tc + r * H);
}

// dc (b, H) holds δc_t from later steps; adds δh_t's share, writes δa_t into da (b, 4H) and adds
// δc_t f_t into dcp (δc_{t-1}).
#define RK_ARGS_lstm_bwd(X)                                                                    \
  X(i64, b) X(i64, H) X(in, dh) X(out, dc) X(in, acts) X(in, tc) X(in, cp) X(i64, ld_cp)     \
  X(out, da) X(out, dcp)
RK_KERNEL(lstm_bwd) {
  const int64_t H = a.H;
  for (int64_t r = 0; r < a.b; ++r)
    lstm_bwd_row(H, a.dh + r * H, a.dc + r * H, a.acts + r * 4 * H, a.tc + r * H,
                 a.cp + r * a.ld_cp, a.da + r * 4 * H, a.dcp + r * H);
}

#define RK_ARGS_lnlstm_fwd(X)                                                                  \
  X(i64, b) X(i64, H) X(in, gi) X(in, z) X(in, g_hh) X(in, b_hh) X(in, g_c) X(in, b_c)       \
  X(in, cp) X(i64, ld_cp) X(out, acts) X(out, mh) X(out, rh) X(out, mc) X(out, rc) X(out, ty) \
  X(out, c) X(out, h) X(real, eps)
RK_KERNEL(lnlstm_fwd) {
  const int64_t H = a.H, G = 4 * H;
  for (int64_t r = 0; r < a.b; ++r)
    lnlstm_fwd_row(H, a.gi + r * G, a.z + r * G, a.g_hh, a.b_hh, a.g_c, a.b_c,
                   a.cp + r * a.ld_cp, a.acts + r * G, a.mh + r, a.rh + r, a.mc + r, a.rc + r,
                   a.ty + r * H, a.c + r * H, a.h + r * H, a.eps);
}

// Writes δy_t (kept for δγ_c, δβ_c), δa_t into da and δz_t = LN'(δa_t) into dz; adds into δc_t
// (dc, in place) and δc_{t-1} (dcp).
#define RK_ARGS_lnlstm_bwd(X)                                                                  \
  X(i64, b) X(i64, H) X(in, dh) X(out, dc) X(in, acts) X(in, ty) X(in, c) X(in, mc) X(in, rc) \
  X(in, g_c) X(in, cp) X(i64, ld_cp) X(in, z) X(in, mh) X(in, rh) X(in, g_hh) X(out, dy)     \
  X(out, da) X(out, dz) X(out, dcp)
RK_KERNEL(lnlstm_bwd) {
  const int64_t H = a.H, G = 4 * H;
  T* tmp = scratch<T>(LNLSTMRows::SCRATCH(H)).data();
  for (int64_t r = 0; r < a.b; ++r)
    lnlstm_bwd_row(H, a.dh + r * H, a.dc + r * H, a.acts + r * G, a.ty + r * H, a.c + r * H,
                   a.mc[r], a.rc[r], a.g_c, a.cp + r * a.ld_cp, a.z + r * G, a.mh[r], a.rh[r],
                   a.g_hh, a.dy + r * H, a.da + r * G, a.dz + r * G, a.dcp + r * H, tmp);
}

// δγ = Σ_rows δy ⊙ x̂ and δβ = Σ_rows δy over n rows of width D, x̂ = (z - μ) / σ on the fly.
#define RK_ARGS_ln_param_grads(X) \
  X(i64, n) X(i64, D) X(in, dy) X(in, z) X(in, mu) X(in, rstd) X(out, dgamma) X(out, dbeta)
RK_KERNEL(ln_param_grads) {
  for (int64_t j = 0; j < a.D; ++j) a.dgamma[j] = a.dbeta[j] = T(0);
  for (int64_t r = 0; r < a.n; ++r)
    ln_param_row(a.D, a.dy + r * a.D, a.z + r * a.D, a.mu[r], a.rstd[r], a.dgamma, a.dbeta);
}

// Whole time loops (scaffold.h): acts (N, 4H) holds the input half on entry.
#define RK_ARGS_lstm_fwd_loop(X) \
  RK_FWD_LOOP(X) X(out, acts) X(out, S_h) X(out, S_c) X(out, tc) X(in, h0) X(in, c0)
RK_KERNEL(lstm_fwd_loop) { forward_loop<LSTMRows>(a); }

#define RK_ARGS_lstm_bwd_loop(X)                                                               \
  RK_BWD_LOOP(X) X(in, acts) X(in, S_c) X(in, tc) X(in, c0) X(out, dS_h) X(out, dS_c)        \
  X(out, dG) X(out, dh0) X(out, dc0)
RK_KERNEL(lstm_bwd_loop) { backward_loop<LSTMRows>(a); }

#define RK_ARGS_lnlstm_fwd_loop(X)                                                             \
  RK_FWD_LOOP(X) X(in, gi) X(in, g_hh) X(in, b_hh) X(in, g_c) X(in, b_c) X(out, acts) X(out, z) \
  X(out, mh) X(out, rh) X(out, mc) X(out, rc) X(out, ty) X(out, S_h) X(out, S_c) X(in, h0)   \
  X(in, c0) X(real, eps)
RK_KERNEL(lnlstm_fwd_loop) { forward_loop<LNLSTMRows>(a); }

#define RK_ARGS_lnlstm_bwd_loop(X)                                                             \
  RK_BWD_LOOP(X) X(in, acts) X(in, ty) X(in, S_c) X(in, mc) X(in, rc) X(in, g_c) X(in, z)    \
  X(in, mh) X(in, rh) X(in, g_hh) X(in, c0) X(out, dS_h) X(out, dS_c) X(out, dy) X(out, dG)  \
  X(out, dGh) X(out, dh0) X(out, dc0)
RK_KERNEL(lnlstm_bwd_loop) { backward_loop<LNLSTMRows>(a); }

// Row-major C (b × n, row stride ldc) = beta C + A (b × k, lda) · B (k × n, ldb) through the
// GEMM at `gemm` (what __init__.py checks the calling convention with).
#define RK_ARGS_gemm_rows(X)                                                                   \
  X(addr, gemm) X(i64, b) X(i64, n) X(i64, k) X(in, A) X(i64, lda) X(in, B) X(i64, ldb)      \
  X(real, beta) X(out, C) X(i64, ldc)
RK_KERNEL(gemm_rows) { gemm_rows<T>(a.gemm, a.b, a.n, a.k, a.A, a.lda, a.B, a.ldb, a.beta, a.C, a.ldc); }
