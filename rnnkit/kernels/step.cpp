// One time step of a whole unidirectional stack (LSTM, GRU or Elman RNN), for inference: every
// layer's two GEMMs (torch's own BLAS, called on the weights as they lie: W (G·H, I) row-major)
// and its fused element-wise step, in one call from Python. No autograd, no workspace; the only
// memory is thread-local scratch for the gate pre-activations.
//
// The maths is the cells' own (rnnkit/cells/lstm.py, gru.py, rnn.py) with the activations of
// common.h, as the training kernels: the tests hold this step to the layer's forward.
//
//   LSTM: a = x W_ih^T + b_ih + h W_hh^T + b_hh; i f g o; c' = f c + i g; h' = o tanh(c')
//   GRU:  gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh; r z = σ(gi + gh);
//         n = tanh(gi^n + r gh^n); h' = n + z (h - n)
//   RNN:  h' = f(x W_ih^T + b_ih + h W_hh^T + b_hh), f = tanh or relu
#include "common.h"

namespace {

enum Kind : int64_t { LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3 };

// Row-major C (b × n) += A (b × k, row stride lda) · W^T, W (n × k) row-major. Up to small_b rows
// a dot product per weight row (16 lanes, vectorised), each weight row read once for all b rows;
// above, the GEMM: in column-major terms C^T = W A^T, i.e. GEMM('T', 'N') on W's memory.
template <typename T>
inline void gemm_nt(void* g, int64_t small_b, int64_t b, int64_t n, int64_t k, const T* A,
                    int64_t lda, const T* W, T* C) {
  if (b <= small_b) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < b; ++r) C[r * n + i] += row_dot(W + i * k, A + r * lda, k);
    return;
  }
  const char tr = 'T', no = 'N';
  const int m_ = static_cast<int>(n), n_ = static_cast<int>(b), k_ = static_cast<int>(k);
  const int la = static_cast<int>(k), lb = static_cast<int>(lda), lc = static_cast<int>(n);
  const T one = 1;
  reinterpret_cast<gemm_fn<T>>(g)(&tr, &no, &m_, &n_, &k_, &one, W, &la, A, &lb, &one, C, &lc);
}

// a (b × G) = bias broadcast over rows (zeros where there is none)
template <typename T> inline void fill_bias(int64_t b, int64_t G, const T* bias, T* a) {
  for (int64_t r = 0; r < b; ++r) {
    if (bias)
      std::memcpy(a + r * G, bias, G * sizeof(T));
    else
      std::memset(a + r * G, 0, G * sizeof(T));
  }
}

template <typename T> inline void add_bias(int64_t b, int64_t G, const T* bias, T* a) {
  if (!bias) return;
  for (int64_t r = 0; r < b; ++r) add_rows(G, bias, a + r * G);
}

template <typename T>
inline void lstm_row(int64_t H, T* RK a, const T* RK cp, T* RK c, T* RK h) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_(a[j]);               // i, f
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_(a[j]);              // g
  for (int64_t j = 3 * H; j < 4 * H; ++j) a[j] = sigmoid_(a[j]);           // o
  const T *RK i = a, *RK f = a + H, *RK g = a + 2 * H, *RK o = a + 3 * H;
  for (int64_t j = 0; j < H; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
  for (int64_t j = 0; j < H; ++j) h[j] = o[j] * tanh_(c[j]);
}

template <typename T>
inline void gru_row(int64_t H, T* RK a, const T* RK gh, const T* RK hp, T* RK h) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid_(a[j] + gh[j]);       // r, z
  const T *RK r = a, *RK z = a + H, *RK q = gh + 2 * H;
  T* RK n = a + 2 * H;
  for (int64_t j = 0; j < H; ++j) n[j] = tanh_(n[j] + r[j] * q[j]);        // n
  for (int64_t j = 0; j < H; ++j) h[j] = n[j] + z[j] * (hp[j] - n[j]);
}

// w: per layer w_ih, w_hh, b_ih, b_hh (biases may be null). x (B, I); h0, h1 (L, B, H); c0, c1
// (L, B, H) for the LSTM (else null). h1/c1 must not overlap h0/c0 or x.
// A language model's ends, optional: with ids (B) the input rows are emb's rows ids[r] (emb
// (n_emb, I)) instead of x's; with w_out (V, H) the logits (B, V) = h_top W_out^T + b_out. An id
// outside [0, n_emb) computes nothing and sets *status to 1 + its row (else 0). Batches of up to
// small_b rows multiply in the loop of gemm_nt, larger ones in the BLAS GEMM.
template <typename T>
void stack_step(void* gemm, int64_t kind, int64_t L, int64_t B, int64_t I, int64_t H,
                const void* const* w, const T* x, const T* h0, const T* c0, T* h1, T* c1,
                const int64_t* ids, const T* emb, int64_t n_emb, const T* w_out, const T* b_out,
                int64_t V, T* logits, int64_t* status, int64_t small_b) {
  const int64_t G = (kind == LSTM ? 4 : kind == GRU ? 3 : 1) * H;
  if (status) *status = 0;
  if (ids) {
    T* xb = scratch<T, 8>(B * I).data();
    for (int64_t r = 0; r < B; ++r) {
      if (ids[r] < 0 || ids[r] >= n_emb) {
        if (status) *status = 1 + r;
        return;
      }
      std::memcpy(xb + r * I, emb + ids[r] * I, I * sizeof(T));
    }
    x = xb;
  }
  T* a = scratch<T, 6>(B * G).data();
  T* gh = scratch<T, 7>(kind == GRU ? B * G : 1).data();
  const T* in = x;
  int64_t in_size = I;
  for (int64_t l = 0; l < L; ++l) {
    const T* w_ih = static_cast<const T*>(w[4 * l]);
    const T* w_hh = static_cast<const T*>(w[4 * l + 1]);
    const T* b_ih = static_cast<const T*>(w[4 * l + 2]);
    const T* b_hh = static_cast<const T*>(w[4 * l + 3]);
    const T* hp = h0 + l * B * H;
    T* h = h1 + l * B * H;
    fill_bias(B, G, b_ih, a);
    gemm_nt<T>(gemm, small_b, B, G, in_size, in, in_size, w_ih, a);                 // + x W_ih^T
    if (kind == GRU) {
      fill_bias(B, G, b_hh, gh);
      gemm_nt<T>(gemm, small_b, B, G, H, hp, H, w_hh, gh);                           // h W_hh^T + b_hh
      for (int64_t r = 0; r < B; ++r) gru_row(H, a + r * G, gh + r * G, hp + r * H, h + r * H);
    } else {
      add_bias(B, G, b_hh, a);
      gemm_nt<T>(gemm, small_b, B, G, H, hp, H, w_hh, a);                            // + h W_hh^T
      if (kind == LSTM) {
        const T* cp = c0 + l * B * H;
        T* c = c1 + l * B * H;
        for (int64_t r = 0; r < B; ++r) lstm_row(H, a + r * G, cp + r * H, c + r * H, h + r * H);
      } else if (kind == RNN_RELU) {
        for (int64_t j = 0; j < B * H; ++j) h[j] = a[j] < T(0) ? T(0) : a[j];   // NaN stays NaN
      } else {
        for (int64_t j = 0; j < B * H; ++j) h[j] = tanh_(a[j]);
      }
    }
    in = h;
    in_size = H;
  }
  if (w_out) {
    fill_bias(B, V, b_out, logits);
    gemm_nt<T>(gemm, small_b, B, V, H, in, H, w_out, logits);                        // + h W_out^T
  }
}

}  // namespace

#define RK_STEP_KERNELS(T, SFX)                                                                   \
  extern "C" void rk_stack_step_##SFX(void* gemm, int64_t kind, int64_t L, int64_t B, int64_t I,  \
                                      int64_t H, const void* const* w, const T* x, const T* h0,   \
                                      const T* c0, T* h1, T* c1, const int64_t* ids, const T* emb, \
                                      int64_t n_emb, const T* w_out, const T* b_out, int64_t V,   \
                                      T* logits, int64_t* status, int64_t small_b) {              \
    stack_step<T>(gemm, kind, L, B, I, H, w, x, h0, c0, h1, c1, ids, emb, n_emb, w_out, b_out, V, \
                  logits, status, small_b);                                                       \
  }

RK_STEP_KERNELS(float, f32)
RK_STEP_KERNELS(double, f64)
