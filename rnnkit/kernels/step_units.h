// One layer's step at small batch by chunks of hidden units (any thread may take any chunk with
// the same result), the output layer by chunks of rows, and the element-wise step of each cell,
// for the inference step (step.cpp).
#pragma once
#include <algorithm>
#include <cstdint>

#include "common.h"
#include "pool.h"
#include "rows.h"

namespace {

enum Kind : int64_t { LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3, MGU = 4 };

// gate rows per hidden unit
inline int64_t gates(int64_t kind) { return kind == LSTM ? 4 : kind == GRU ? 3 : kind == MGU ? 2 : 1; }

// The element-wise step of units [j0, j1) of one row: a (G) the gate pre-activations (for the
// GRU x W_ih^T + b_ih, with gh (G) = h W_hh^T + b_hh), hp (H) the previous h, cp / c (H) the
// LSTM's cell state before / after (else null), h (H) out. a is overwritten.
template <typename T>
inline void cell_units(int64_t kind, int64_t H, int64_t j0, int64_t j1, T* RK a, const T* RK gh,
                       const T* RK hp, const T* RK cp, T* RK c, T* RK h) {
  if (kind == LSTM) {
    for (int64_t j = j0; j < j1; ++j) a[j] = sigmoid_(a[j]);                      // i
    for (int64_t j = H + j0; j < H + j1; ++j) a[j] = sigmoid_(a[j]);              // f
    for (int64_t j = 2 * H + j0; j < 2 * H + j1; ++j) a[j] = tanh_(a[j]);         // g
    for (int64_t j = 3 * H + j0; j < 3 * H + j1; ++j) a[j] = sigmoid_(a[j]);      // o
    const T *RK i = a, *RK f = a + H, *RK g = a + 2 * H, *RK o = a + 3 * H;
    for (int64_t j = j0; j < j1; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
    for (int64_t j = j0; j < j1; ++j) h[j] = o[j] * tanh_(c[j]);
  } else if (kind == GRU) {
    for (int64_t j = j0; j < j1; ++j) a[j] = sigmoid_(a[j] + gh[j]);              // r
    for (int64_t j = H + j0; j < H + j1; ++j) a[j] = sigmoid_(a[j] + gh[j]);      // z
    const T *RK r = a, *RK z = a + H, *RK q = gh + 2 * H;
    T* RK n = a + 2 * H;
    for (int64_t j = j0; j < j1; ++j) n[j] = tanh_(n[j] + r[j] * q[j]);           // n
    for (int64_t j = j0; j < j1; ++j) h[j] = n[j] + z[j] * (hp[j] - n[j]);
  } else if (kind == RNN_RELU) {
    for (int64_t j = j0; j < j1; ++j) h[j] = a[j] < T(0) ? T(0) : a[j];          // NaN stays NaN
  } else {
    for (int64_t j = j0; j < j1; ++j) h[j] = tanh_(a[j]);
  }
}

// MGU's second half for units [j0, j1) of one row: a (2H) holds f, then n's whole
// pre-activation; h' = (n - h) f + h, as the cell computes it
template <typename T>
inline void mgu_units(int64_t H, int64_t j0, int64_t j1, T* RK a, const T* RK hp, T* RK h) {
  const T* RK f = a;
  T* RK n = a + H;
  for (int64_t j = j0; j < j1; ++j) n[j] = tanh_(n[j]);
  for (int64_t j = j0; j < j1; ++j) h[j] = (n[j] - hp[j]) * f[j] + hp[j];
}

// One layer's step at small batch, by chunks of `units` hidden units: a chunk computes the gate
// rows of its units (a vectorised dot per weight row, each row read once for all B rows; from
// table[ids[r]] instead of x W_ih^T + b_ih where given) and then their element-wise step, so the
// chunks are independent and any thread may take any chunk with the same result.
template <typename T> struct UnitsJob {
  int64_t kind, B, G, H, I, units;
  const T *x, *w_ih, *w_hh, *b_ih, *b_hh, *hp, *cp, *table, *rec;
  const int64_t* ids;
  T *acc, *gh, *h, *c;
};

// x W_ih^T + b_ih of gate row i for batch row r, given its dot dx: the table's row where given
template <typename T> inline T input_part(const UnitsJob<T>& J, int64_t r, int64_t i, T dx) {
  if (J.table) return J.table[J.ids[r] * J.G + i];
  T s = J.b_ih ? J.b_ih[i] : T(0);
  s += dx;
  return s;
}

template <typename T> void units_chunk(const void* p, int64_t chunk) {
  const UnitsJob<T>& J = *static_cast<const UnitsJob<T>*>(p);
  const int64_t B = J.B, G = J.G, H = J.H, I = J.I;
  const int64_t j0 = chunk * J.units, j1 = std::min(H, j0 + J.units);
  const bool gru = J.kind == GRU;
  T dx[4] = {}, dh[4];                    // (dx unused with a table)
  for (int64_t q = 0; q < G / H; ++q)
    for (int64_t i0 = q * H + j0; i0 < q * H + j1; i0 += 4) {
      const int64_t m = std::min<int64_t>(4, q * H + j1 - i0);
      for (int64_t r = 0; r < B; ++r) {
        if (!J.table) dots_n(J.w_ih + i0 * I, I, J.x + r * I, m, dx);
        if (J.rec)                                          // h W_hh^T computed ahead
          std::memcpy(dh, J.rec + r * G + i0, m * sizeof(T));
        else
          dots_n(J.w_hh + i0 * H, H, J.hp + r * H, m, dh);
        for (int64_t e = 0; e < m; ++e) {
          const int64_t i = i0 + e;
          T s = input_part(J, r, i, dx[e]);
          if (gru) {
            T g = J.b_hh ? J.b_hh[i] : T(0);
            g += dh[e];
            J.gh[r * G + i] = g;
          } else {
            if (J.b_hh) s += J.b_hh[i];
            s += dh[e];
          }
          J.acc[r * G + i] = s;
        }
      }
    }
  for (int64_t r = 0; r < B; ++r)
    cell_units(J.kind, H, j0, j1, J.acc + r * G, J.gh + r * G, J.hp + r * H,
               J.cp ? J.cp + r * H : nullptr, J.c ? J.c + r * H : nullptr, J.h + r * H);
}

// MGU (rnnkit/cells/mgu.py) at small batch, two phases a layer: U_n multiplies f ⊙ h, so every
// unit's f comes first. Phase 1, a chunk's units: f = σ(x W_if^T + b_if + b_hf + h U_f^T) and n's
// input half x W_in^T + b_in + b_hn into acc (rows of table[ids[r]] for x W_ih^T + b_ih where
// given), fh = f ⊙ h into J.gh (B, H). Phase 2: n = tanh(acc_n + fh U_n^T), h' = (n - h) f + h.
template <typename T> void mgu_gate_chunk(const void* p, int64_t chunk) {
  const UnitsJob<T>& J = *static_cast<const UnitsJob<T>*>(p);
  const int64_t B = J.B, G = J.G, H = J.H, I = J.I;
  const int64_t j0 = chunk * J.units, j1 = std::min(H, j0 + J.units);
  T dx[4] = {}, dh[4];                    // (dx unused with a table)
  for (int64_t q = 0; q < 2; ++q)
    for (int64_t i0 = q * H + j0; i0 < q * H + j1; i0 += 4) {
      const int64_t m = std::min<int64_t>(4, q * H + j1 - i0);
      for (int64_t r = 0; r < B; ++r) {
        if (!J.table) dots_n(J.w_ih + i0 * I, I, J.x + r * I, m, dx);
        if (q == 0) dots_n(J.w_hh + i0 * H, H, J.hp + r * H, m, dh);
        for (int64_t e = 0; e < m; ++e) {
          const int64_t i = i0 + e;
          T s = input_part(J, r, i, dx[e]);
          if (J.b_hh) s += J.b_hh[i];
          if (q == 0) s += dh[e];
          J.acc[r * G + i] = s;
        }
      }
    }
  for (int64_t r = 0; r < B; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const T f = sigmoid_(J.acc[r * G + j]);
      J.acc[r * G + j] = f;
      J.gh[r * H + j] = f * J.hp[r * H + j];
    }
}

template <typename T> void mgu_new_chunk(const void* p, int64_t chunk) {
  const UnitsJob<T>& J = *static_cast<const UnitsJob<T>*>(p);
  const int64_t B = J.B, G = J.G, H = J.H;
  const int64_t j0 = chunk * J.units, j1 = std::min(H, j0 + J.units);
  T dh[4];
  for (int64_t i0 = H + j0; i0 < H + j1; i0 += 4) {
    const int64_t m = std::min<int64_t>(4, H + j1 - i0);
    for (int64_t r = 0; r < B; ++r) {
      dots_n(J.w_hh + i0 * H, H, J.gh + r * H, m, dh);
      for (int64_t e = 0; e < m; ++e) J.acc[r * G + i0 + e] += dh[e];
    }
  }
  for (int64_t r = 0; r < B; ++r)
    mgu_units(H, j0, j1, J.acc + r * G, J.hp + r * H, J.h + r * H);
}

// The output layer at small batch, by chunks of `rows` rows of W_out: logits (B, V) = b_out +
// h W_out^T.
template <typename T> struct OutJob {
  int64_t B, V, H, rows;
  const T *h, *w, *b;
  T* logits;
};

template <typename T> void out_chunk(const void* p, int64_t chunk) {
  const OutJob<T>& J = *static_cast<const OutJob<T>*>(p);
  const int64_t i1 = std::min(J.V, (chunk + 1) * J.rows);
  T d[4];
  for (int64_t i = chunk * J.rows; i < i1; i += 4) {
    const int64_t m = std::min<int64_t>(4, i1 - i);
    for (int64_t r = 0; r < J.B; ++r) {
      dots_n(J.w + i * J.H, J.H, J.h + r * J.H, m, d);
      for (int64_t e = 0; e < m; ++e) {
        T s = J.b ? J.b[i + e] : T(0);
        s += d[e];
        J.logits[r * J.V + i + e] = s;
      }
    }
  }
}

// fn over chunks [0, n): shared with the pool's workers, or all here where there is no pool
inline void run_chunks(rk_pool::Pool* pool, rk_pool::ChunkFn fn, const void* job, int64_t n) {
  if (pool)
    pool->run(fn, job, n);
  else
    for (int64_t c = 0; c < n; ++c) fn(job, c);
}

}  // namespace
