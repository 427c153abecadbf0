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

}  // namespace

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

RK_EXPORT_GRU(float, f32)
RK_EXPORT_GRU(double, f64)
