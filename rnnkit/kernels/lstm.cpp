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
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// ---- activations ---------------------------------------------------------------------------
// float: exp by range reduction and a degree-6 polynomial (Cephes expf, ~1 ulp), branch-free so
// the compiler vectorises the loops that call it. double: the C library's (gradcheck, tests).

inline float exp_(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  float n = std::floor(x * 1.44269504088896341f + 0.5f);      // x = n ln2 + r, |r| <= ln2 / 2
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;       // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double exp_(double x) { return std::exp(x); }

template <typename T> inline T sigmoid_(T x) { return T(1) / (T(1) + exp_(-x)); }

inline float tanh_(float x) {
  float a = x < 0.0f ? -x : x;
  float z = x * x;                                            // |x| < 0.625: odd polynomial
  float s = -5.70498872745e-3f;
  s = s * z + 2.06390887954e-2f;
  s = s * z - 5.37397155531e-2f;
  s = s * z + 1.33314422036e-1f;
  s = s * z - 3.33332819422e-1f;
  s = s * z * x + x;
  float l = 1.0f - 2.0f / (exp_(2.0f * a) + 1.0f);            // otherwise 1 - 2 / (e^{2|x|} + 1)
  l = x < 0.0f ? -l : l;
  return a < 0.625f ? s : l;
}
inline double tanh_(double x) { return std::tanh(x); }

// ---- layer norm of one row -----------------------------------------------------------------
// Sums with 16 independent lanes: vectorised without reassociating a single chain.
constexpr int L = 16;

template <typename T> inline T row_sum(const T* x, int64_t D) {
  T acc[L] = {};
  int64_t j = 0;
  for (; j + L <= D; j += L)
    for (int k = 0; k < L; ++k) acc[k] += x[j + k];
  T s = 0;
  for (; j < D; ++j) s += x[j];
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}

template <typename T> inline T row_dot(const T* x, const T* y, int64_t D) {
  T acc[L] = {};
  int64_t j = 0;
  for (; j + L <= D; j += L)
    for (int k = 0; k < L; ++k) acc[k] += x[j + k] * y[j + k];
  T s = 0;
  for (; j < D; ++j) s += x[j] * y[j];
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}

template <typename T> inline T row_sqdev(const T* x, T mu, int64_t D) {
  T acc[L] = {};
  int64_t j = 0;
  for (; j + L <= D; j += L)
    for (int k = 0; k < L; ++k) { T d = x[j + k] - mu; acc[k] += d * d; }
  T s = 0;
  for (; j < D; ++j) { T d = x[j] - mu; s += d * d; }
  for (int k = 0; k < L; ++k) s += acc[k];
  return s;
}

// μ and 1/σ of a row (biased variance, as torch.nn.LayerNorm)
template <typename T> inline void ln_stats(const T* z, int64_t D, T eps, T* mu, T* rstd) {
  T m = row_sum(z, D) / T(D);
  T v = row_sqdev(z, m, D) / T(D);
  *mu = m;
  *rstd = T(1) / std::sqrt(v + eps);
}

// δz = (δx̂ - mean(δx̂) - x̂ mean(δx̂ x̂)) / σ with δx̂ = δy γ, x̂ = (z - μ) / σ; tmp: 2·D scratch
template <typename T>
inline void ln_back(const T* dy, const T* z, T mu, T rstd, const T* gamma, int64_t D, T* dz,
                    T* tmp) {
  T* dxh = tmp;
  T* xh = tmp + D;
  for (int64_t j = 0; j < D; ++j) {
    dxh[j] = dy[j] * gamma[j];
    xh[j] = (z[j] - mu) * rstd;
  }
  T m1 = row_sum(dxh, D) / T(D);
  T m2 = row_dot(dxh, xh, D) / T(D);
  for (int64_t j = 0; j < D; ++j) dz[j] = (dxh[j] - m1 - xh[j] * m2) * rstd;
}

template <typename T> std::vector<T>& scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  return buf;
}

// ---- LSTM --------------------------------------------------------------------------------
// acts (b, 4H) holds a_t on entry and [i f g o] on exit; writes c_t, h_t, tanh(c_t).
template <typename T>
void lstm_fwd(int64_t b, int64_t H, T* acts, const T* cp, int64_t ld_cp, T* c, T* h, T* tc) {
  for (int64_t r = 0; r < b; ++r) {
    T* a = acts + r * 4 * H;
    const T* cpr = cp + r * ld_cp;
    T *cr = c + r * H, *hr = h + r * H, *tr = tc + r * H;
    for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_(a[j]);           // i_t, f_t
    for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);          // g_t
    for (int64_t j = 3 * H; j < 4 * H; ++j) a[j] = sigmoid_(a[j]);       // o_t
    const T *i = a, *f = a + H, *g = a + 2 * H, *o = a + 3 * H;
    for (int64_t j = 0; j < H; ++j) {
      T cj = f[j] * cpr[j] + i[j] * g[j];                                 // c_t
      T tj = tanh_(cj);
      cr[j] = cj;
      tr[j] = tj;
      hr[j] = o[j] * tj;                                                  // h_t = o_t tanh(c_t)
    }
  }
}

// dc (b, H) holds δc_t from later steps; adds δh_t's share, writes δa_t into da (b, 4H) and adds
// δc_t f_t into dcp (δc_{t-1}).
template <typename T>
void lstm_bwd(int64_t b, int64_t H, const T* dh, T* dc, const T* acts, const T* tc, const T* cp,
              int64_t ld_cp, T* da, T* dcp) {
  for (int64_t r = 0; r < b; ++r) {
    const T* a = acts + r * 4 * H;
    const T *i = a, *f = a + H, *g = a + 2 * H, *o = a + 3 * H;
    const T *dhr = dh + r * H, *tr = tc + r * H, *cpr = cp + r * ld_cp;
    T *dcr = dc + r * H, *d = da + r * 4 * H, *dcpr = dcp + r * H;
    for (int64_t j = 0; j < H; ++j) {
      T dcj = dcr[j] + dhr[j] * o[j] * (T(1) - tr[j] * tr[j]);           // δc_t += δh_t o_t tanh'
      dcr[j] = dcj;
      d[j] = dcj * g[j] * i[j] * (T(1) - i[j]);                           // δa^i
      d[H + j] = dcj * cpr[j] * f[j] * (T(1) - f[j]);                     // δa^f
      d[2 * H + j] = dcj * i[j] * (T(1) - g[j] * g[j]);                   // δa^g
      d[3 * H + j] = dhr[j] * tr[j] * o[j] * (T(1) - o[j]);               // δa^o
      dcpr[j] += dcj * f[j];                                              // δc_{t-1} += δc_t f_t
    }
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
    const T *zr = z + r * G, *gr = gi + r * G, *cpr = cp + r * ld_cp;
    T* a = acts + r * G;
    T m, s;
    ln_stats(zr, G, eps, &m, &s);
    mh[r] = m;
    rh[r] = s;
    for (int64_t j = 0; j < G; ++j) a[j] = gr[j] + (zr[j] - m) * s * g_hh[j] + b_hh[j];
    for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_(a[j]);           // i_t, f_t
    for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);          // g_t
    for (int64_t j = 3 * H; j < G; ++j) a[j] = sigmoid_(a[j]);           // o_t
    const T *i = a, *f = a + H, *g = a + 2 * H, *o = a + 3 * H;
    T *cr = c + r * H, *hr = h + r * H, *yr = ty + r * H;
    for (int64_t j = 0; j < H; ++j) cr[j] = f[j] * cpr[j] + i[j] * g[j];  // c_t
    ln_stats(cr, H, eps, &m, &s);
    mc[r] = m;
    rc[r] = s;
    for (int64_t j = 0; j < H; ++j) {
      T tj = tanh_((cr[j] - m) * s * g_c[j] + b_c[j]);                    // tanh(y_t), y_t = LN(c_t)
      yr[j] = tj;
      hr[j] = o[j] * tj;
    }
  }
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
    const T* a = acts + r * G;
    const T *i = a, *f = a + H, *g = a + 2 * H, *o = a + 3 * H;
    const T *dhr = dh + r * H, *yr = ty + r * H, *cpr = cp + r * ld_cp;
    T *dcr = dc + r * H, *dyr = dy + r * H, *d = da + r * G, *dcpr = dcp + r * H;
    for (int64_t j = 0; j < H; ++j) dyr[j] = dhr[j] * o[j] * (T(1) - yr[j] * yr[j]);
    ln_back(dyr, c + r * H, mc[r], rc[r], g_c, H, dln, tmp.data());     // δc_t += LN'(δy_t)
    for (int64_t j = 0; j < H; ++j) {
      T dcj = dcr[j] + dln[j];
      dcr[j] = dcj;
      d[j] = dcj * g[j] * i[j] * (T(1) - i[j]);                           // δa^i
      d[H + j] = dcj * cpr[j] * f[j] * (T(1) - f[j]);                     // δa^f
      d[2 * H + j] = dcj * i[j] * (T(1) - g[j] * g[j]);                   // δa^g
      d[3 * H + j] = dhr[j] * yr[j] * o[j] * (T(1) - o[j]);               // δa^o
      dcpr[j] += dcj * f[j];                                              // δc_{t-1} += δc_t f_t
    }
    ln_back(d, z + r * G, mh[r], rh[r], g_hh, G, dz + r * G, tmp.data()); // δz_t = LN'(δa_t)
  }
}

// δγ = Σ_rows δy ⊙ x̂ and δβ = Σ_rows δy over n rows, x̂ = (z - μ) / σ formed on the fly.
template <typename T>
void ln_param_grads(int64_t n, int64_t D, const T* dy, const T* z, const T* mu, const T* rstd,
                    T* dgamma, T* dbeta) {
  for (int64_t j = 0; j < D; ++j) dgamma[j] = dbeta[j] = T(0);
  for (int64_t r = 0; r < n; ++r) {
    const T *d = dy + r * D, *zr = z + r * D;
    T m = mu[r], s = rstd[r];
    for (int64_t j = 0; j < D; ++j) {
      dgamma[j] += d[j] * (zr[j] - m) * s;
      dbeta[j] += d[j];
    }
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

RK_EXPORT(float, f32)
RK_EXPORT(double, f64)
