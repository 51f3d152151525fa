// Fused CPU kernels for the delta shortcut on a matrix node state.
//
// The torch-op path makes one pass over the [N, d, d_v] state per op (the
// k^T X dot, the outer update, the column reads of the compressor ...), and
// batched products with d_v-wide matrices run far from the copy floor. Here
// every node's state (d * d_v values, 2 KiB at d = 128, d_v = 4) is read
// from memory once per kernel and reused from L1: the forward reads X once
// and writes X' once, the backward reads g and X once and writes dX once.
// Math and notation: ops/README.md (closed-form backward). The slow
// reference is ops/reference.py; tests/ops/test_delta_cpu_kernel.py
// compares outputs and every gradient with it.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include <vector>

#include "axes_cpu.h"
#include "graph_backward.h"
#include "message_cpu.h"

namespace {

constexpr int64_t kGrain = 64;  // nodes per task

void check_state(const at::Tensor& X, const char* name) {
  TORCH_CHECK(X.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(X.dim() == 3, name, " must be [N, d, d_v], got ", X.sizes());
  TORCH_CHECK(X.is_contiguous(), name, " must be contiguous");
}

template <typename F>
void dispatch_dv(int64_t dv, F&& f) {
  switch (dv) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 8: f(std::integral_constant<int, 8>()); break;
    default: f(std::integral_constant<int, 0>());
  }
}

// acc[j] = Σ_f k[f] x[f * dv + j]. Floating-point sums are not reordered
// by the compiler, so one running sum per column is a chain of d dependent
// FMAs; kLanes independent partial sums (k[f .. f + U) at once) let the
// loop vectorise and hide the FMA latency. Summation order is fixed, so
// results are deterministic.
constexpr int kLanes = 16;

template <typename T, int DV>
inline void dot_cols(const T* k, const T* x, int64_t d, int64_t dv, T* acc) {
  if constexpr (DV > 0) {
    constexpr int U = DV >= kLanes ? 1 : kLanes / DV;
    T part[U * DV] = {};
    int64_t f = 0;
    for (; f + U <= d; f += U)
      for (int u = 0; u < U; ++u)
        for (int j = 0; j < DV; ++j)
          part[u * DV + j] += k[f + u] * x[(f + u) * DV + j];
    for (int j = 0; j < DV; ++j) {
      T t = 0;
      for (int u = 0; u < U; ++u) t += part[u * DV + j];
      for (int64_t g = f; g < d; ++g) t += k[g] * x[g * DV + j];
      acc[j] = t;
    }
  } else {
    for (int64_t j = 0; j < dv; ++j) acc[j] = 0;
    for (int64_t f = 0; f < d; ++f)
      for (int64_t j = 0; j < dv; ++j) acc[j] += k[f] * x[f * dv + j];
  }
}

template <typename T>
inline T sum_sq(const T* k, int64_t d) {
  T part[kLanes] = {};
  int64_t f = 0;
  for (; f + kLanes <= d; f += kLanes)
    for (int u = 0; u < kLanes; ++u) part[u] += k[f + u] * k[f + u];
  T t = 0;
  for (int u = 0; u < kLanes; ++u) t += part[u];
  for (; f < d; ++f) t += k[f] * k[f];
  return t;
}

// Nodes per task; per-task partial sums (the compressor weight's gradient)
// are added in task order, so results do not depend on thread scheduling.
constexpr int64_t kBlock = 1024;

// One node. The pointers are parameters of their own function, not captures
// of the parallel_for lambda: __restrict__ on captured pointers is lost, and
// without it the compiler must assume every store to X' may change c[j] or
// w and reloads them (measured: d_v = 8 at half the d_v = 4 speed per
// column).
template <typename T, int DV>
inline void forward_node(const T* __restrict__ x, const T* __restrict__ kn,
                         const T beta, const T* __restrict__ vn,
                         const T* __restrict__ w, const T eps,
                         T* __restrict__ o, T* __restrict__ readn,
                         T* __restrict__ rho_n, T* __restrict__ sn,
                         T* __restrict__ c, T* __restrict__ acc,
                         const int64_t d, const int64_t dv_rt) {
  const int64_t dv = DV > 0 ? DV : dv_rt;
  const T r = T(1) / std::sqrt(sum_sq(kn, d) + eps * eps);
  *rho_n = r;
  dot_cols<T, DV>(kn, x, d, dv, acc);
  const T br = beta * r;
  for (int64_t j = 0; j < dv; ++j) {
    sn[j] = acc[j] * r;                              // s = k̂ᵀX
    c[j] = (vn[j] - sn[j]) * br;                     // βρ(v − s)
  }
  if (readn) {
    for (int64_t f = 0; f < d; ++f) {
      T cf = 0;
      for (int64_t j = 0; j < dv; ++j) {
        const T v = x[f * dv + j] + kn[f] * c[j];
        o[f * dv + j] = v;
        cf += w[f * dv + j] * v;
      }
      readn[f] = cf;
    }
  } else {
    for (int64_t f = 0; f < d; ++f)
      for (int64_t j = 0; j < dv; ++j)
        o[f * dv + j] = x[f * dv + j] + kn[f] * c[j];
  }
}

// Flat kernels for d_v ∈ {2, 4, 8}. A node's state is m = d·d_v
// contiguous values; the per-feature loops above reduce over the short d_v
// axis (horizontal sums) and run 2-6x off the bandwidth floor. Here every
// loop runs over the flat index i = f·d_v + j in chunks of kFlat lanes,
// with k expanded to kx[i] = k[f] and the per-column scalars to periodic
// patterns p[l] = c[l mod d_v] (kFlat is a multiple of d_v), so all loops
// are contiguous and vectorise; per-feature sums (the read, dk) are taken
// from a scratch row afterwards. Same arithmetic, other summation order.
constexpr int kFlat = 16;

template <int DV>
constexpr bool flat_dv() { return DV == 2 || DV == 4 || DV == 8; }

template <typename T, int DV>
inline void dot_flat(const T* __restrict__ kx, const T* __restrict__ x,
                     int64_t m, T* __restrict__ out) {
  T acc[kFlat] = {};
  int64_t i = 0;
  for (; i + kFlat <= m; i += kFlat)
    for (int l = 0; l < kFlat; ++l) acc[l] += kx[i + l] * x[i + l];
  for (int j = 0; j < DV; ++j) out[j] = 0;
  for (int l = 0; l < kFlat; ++l) out[l % DV] += acc[l];
  for (; i < m; ++i) out[i % DV] += kx[i] * x[i];
}

// out[f] = Σ_j t[f·DV + j], the per-feature sums of a flat scratch row.
// gcc vectorises the plain loop with transposing permutes (the fused read
// then doubled the forward's time at d_v = 8); for float with AVX2 the sums
// of 8 features are taken with horizontal adds instead.
template <typename T, int DV>
inline void sum_groups(const T* __restrict__ t, T* __restrict__ out,
                       const int64_t d) {
  int64_t f = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float> && (DV == 4 || DV == 8)) {
    for (; f + 8 <= d; f += 8) {
      const float* p = t + f * DV;
      __m256 r;
      if constexpr (DV == 4) {      // a vector holds 2 features
        const __m256 h1 = _mm256_hadd_ps(_mm256_loadu_ps(p),
                                         _mm256_loadu_ps(p + 8));
        const __m256 h2 = _mm256_hadd_ps(_mm256_loadu_ps(p + 16),
                                         _mm256_loadu_ps(p + 24));
        // [f0 f2 f4 f6 | f1 f3 f5 f7] -> f0 .. f7
        r = _mm256_permutevar8x32_ps(_mm256_hadd_ps(h1, h2),
                                     _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      } else {                      // a vector holds 1 feature
        __m256 h[4];
        for (int q = 0; q < 4; ++q)
          h[q] = _mm256_hadd_ps(_mm256_loadu_ps(p + 16 * q),
                                _mm256_loadu_ps(p + 16 * q + 8));
        const __m256 a = _mm256_hadd_ps(h[0], h[1]);  // f0-3 lo | f0-3 hi
        const __m256 b = _mm256_hadd_ps(h[2], h[3]);  // f4-7 lo | f4-7 hi
        r = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20),
                          _mm256_permute2f128_ps(a, b, 0x31));
      }
      _mm256_storeu_ps(out + f, r);
    }
  }
#endif
  for (; f < d; ++f) {
    T acc = t[f * DV];
    for (int j = 1; j < DV; ++j) acc += t[f * DV + j];
    out[f] = acc;
  }
}

template <typename T, int DV>
inline void forward_node_flat(const T* __restrict__ x,
                              const T* __restrict__ kn, const T beta,
                              const T* __restrict__ vn,
                              const T* __restrict__ w, const T eps,
                              T* __restrict__ o, T* __restrict__ readn,
                              T* __restrict__ rho_n, T* __restrict__ sn,
                              T* __restrict__ kx, T* __restrict__ tmp,
                              const int64_t d) {
  const int64_t m = d * DV;
  for (int64_t f = 0; f < d; ++f)
    for (int j = 0; j < DV; ++j) kx[f * DV + j] = kn[f];
  const T r = T(1) / std::sqrt(sum_sq(kn, d) + eps * eps);
  *rho_n = r;
  T acc[DV];
  dot_flat<T, DV>(kx, x, m, acc);
  const T br = beta * r;
  T cp[kFlat];
  for (int j = 0; j < DV; ++j) {
    sn[j] = acc[j] * r;                              // s = k̂ᵀX
    acc[j] = (vn[j] - sn[j]) * br;                   // c = βρ(v − s)
  }
  for (int l = 0; l < kFlat; ++l) cp[l] = acc[l % DV];
  int64_t i = 0;
  if (readn) {                                       // X' and w ⊙ X'
    for (; i + kFlat <= m; i += kFlat)
      for (int l = 0; l < kFlat; ++l) {
        const T v = x[i + l] + kx[i + l] * cp[l];
        o[i + l] = v;
        tmp[i + l] = w[i + l] * v;
      }
    for (; i < m; ++i) {
      o[i] = x[i] + kx[i] * acc[i % DV];
      tmp[i] = w[i] * o[i];
    }
    sum_groups<T, DV>(tmp, readn, d);
    return;
  }
  for (; i + kFlat <= m; i += kFlat)
    for (int l = 0; l < kFlat; ++l) o[i + l] = x[i + l] + kx[i + l] * cp[l];
  for (; i < m; ++i) o[i] = x[i] + kx[i] * acc[i % DV];
}

// Training backward of one node (g, dX, dk wanted; gc optional).
template <typename T, int DV>
inline void backward_node_flat(
    const T* __restrict__ gn, const T* __restrict__ gcn,
    const T* __restrict__ x, const T* __restrict__ kn, const T b,
    const T* __restrict__ vn, const T* __restrict__ w, const T rh,
    const T* __restrict__ sn, T* __restrict__ gxn, T* __restrict__ gkn,
    T* __restrict__ gbeta_n, T* __restrict__ gvn, T* __restrict__ pw,
    T* __restrict__ kx, T* __restrict__ G, T* __restrict__ gcx,
    T* __restrict__ tmp, const int64_t d) {
  const int64_t m = d * DV;
  for (int64_t f = 0; f < d; ++f)
    for (int j = 0; j < DV; ++j) kx[f * DV + j] = kn[f];
  const T* Gp = gn;
  T a[DV], r[DV];
  if (gcn) {                     // G = g + gc ⊗ w and kᵀG in one pass
    for (int64_t f = 0; f < d; ++f)
      for (int j = 0; j < DV; ++j) gcx[f * DV + j] = gcn[f];
    T acc[kFlat] = {};
    int64_t i = 0;
    for (; i + kFlat <= m; i += kFlat)
      for (int l = 0; l < kFlat; ++l) {
        const T Gv = gn[i + l] + gcx[i + l] * w[i + l];
        G[i + l] = Gv;
        acc[l] += kx[i + l] * Gv;
      }
    for (int j = 0; j < DV; ++j) a[j] = 0;
    for (int l = 0; l < kFlat; ++l) a[l % DV] += acc[l];
    for (; i < m; ++i) {
      G[i] = gn[i] + gcx[i] * w[i];
      a[i % DV] += kx[i] * G[i];
    }
    Gp = G;
  } else {
    dot_flat<T, DV>(kx, gn, m, a);
  }
  const T br = b * rh;
  T proj = 0, gb = 0;
  T ap[kFlat], rp[kFlat], cap[kFlat], cp[kFlat];
  for (int j = 0; j < DV; ++j) {
    a[j] *= rh;                                      // a = k̂ᵀG
    r[j] = vn[j] - sn[j];
    proj += a[j] * (r[j] - sn[j]);
    gb += a[j] * r[j];
    if (gvn) gvn[j] = b * a[j];
  }
  if (gbeta_n) *gbeta_n = gb;
  for (int l = 0; l < kFlat; ++l) {
    ap[l] = a[l % DV];
    rp[l] = r[l % DV];
    cap[l] = br * a[l % DV];
    cp[l] = br * r[l % DV];                          // X' = X + k cᵀ
  }
  const T kk = -rh * rh * b * proj;                  // −ρ² β aᵀ(r − s)
  int64_t i = 0;
  if (pw && gcn) {               // dw += gc ⊗ X' (X' = X + k cᵀ) alongside
    for (; i + kFlat <= m; i += kFlat)
      for (int l = 0; l < kFlat; ++l) {
        const T Gv = Gp[i + l], xv = x[i + l], kv = kx[i + l];
        gxn[i + l] = Gv - kv * cap[l];
        tmp[i + l] = Gv * rp[l] - xv * ap[l];
        pw[i + l] += gcx[i + l] * (xv + kv * cp[l]);
      }
  } else {
    for (; i + kFlat <= m; i += kFlat)
      for (int l = 0; l < kFlat; ++l) {
        const T Gv = Gp[i + l];
        gxn[i + l] = Gv - kx[i + l] * cap[l];
        tmp[i + l] = Gv * rp[l] - x[i + l] * ap[l];
      }
  }
  for (; i < m; ++i) {
    gxn[i] = Gp[i] - kx[i] * cap[i % DV];
    tmp[i] = Gp[i] * rp[i % DV] - x[i] * ap[i % DV];
    if (pw && gcn) pw[i] += gcx[i] * (x[i] + kx[i] * cp[i % DV]);
  }
  sum_groups<T, DV>(tmp, gkn, d);
  for (int64_t f = 0; f < d; ++f) gkn[f] = br * gkn[f] + kk * kn[f];
}

// DV > 0: d_v known at compile time (the inner loops unroll and the
// per-node sums live in registers); DV == 0: any d_v.
//
// With w (the next read's compressor, [d, d_v]) the kernel also writes
// read[n, f] = Σ_j w[f, j] X'[n, f, j] from the values it just computed:
// the next layer's context costs no pass over the state.
template <typename T, int DV>
void forward_impl(const T* X, const T* k, const T* beta, const T* V,
                  const T* w, T eps, T* out, T* read, T* rho, T* s,
                  int64_t N, int64_t d, int64_t dv_rt) {
  const int64_t dv = DV > 0 ? DV : dv_rt;
  at::parallel_for(0, N, kGrain, [&](int64_t lo, int64_t hi) {
    std::vector<T> buf(2 * dv);
    if constexpr (flat_dv<DV>()) {
      std::vector<T> scratch(2 * d * dv);
      for (int64_t n = lo; n < hi; ++n)
        forward_node_flat<T, DV>(
            X + n * d * dv, k + n * d, beta[n], V + n * dv, w, eps,
            out + n * d * dv, read ? read + n * d : nullptr, rho + n,
            s + n * dv, scratch.data(), scratch.data() + d * dv, d);
      return;
    }
    for (int64_t n = lo; n < hi; ++n)
      forward_node<T, DV>(X + n * d * dv, k + n * d, beta[n], V + n * dv, w,
                          eps, out + n * d * dv,
                          read ? read + n * d : nullptr, rho + n, s + n * dv,
                          buf.data(), buf.data() + dv, d, dv);
  });
}

// Closed-form backward (ops/README.md). The gradient reaching X' is
// G = g + gc ⊗ w when the fused read was used (gc = ∂L/∂read; g may be
// absent), and dw = Σ_n gc[n] ⊗ X'[n] with X' rebuilt from X (no pass over
// the output).
template <typename T, int DV>
void backward_impl(const T* __restrict__ g, const T* __restrict__ gc,
                   const T* __restrict__ X, const T* __restrict__ k,
                   const T* beta, const T* V, const T* __restrict__ w,
                   const T* rho, const T* s, T* gX, T* gk, T* gbeta, T* gV,
                   T* gw, int64_t N, int64_t d, int64_t dv_rt) {
  const int64_t dv = DV > 0 ? DV : dv_rt, m = d * dv;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  std::vector<T> part(gw ? blocks * m : 0, T(0));
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> buf(DV > 0 ? d : 5 * dv + d);
    T stack[DV > 0 ? 4 * DV : 1];
    T* a = DV > 0 ? stack : buf.data() + d;
    T* r = a + dv;
    T* ca = r + dv;
    T* c = ca + dv;
    T* gck = buf.data();                             // gc ⊙ k, [d]
    std::vector<T> flat(flat_dv<DV>() ? 4 * m : 0);  // kx, G, gcx, tmp
    for (int64_t blk = b0; blk < b1; ++blk) {
     T* __restrict__ pw = gw ? part.data() + blk * m : nullptr;
     for (int64_t n = blk * kBlock; n < std::min(N, (blk + 1) * kBlock); ++n) {
      const T* gn = g ? g + n * m : nullptr;
      const T* gcn = gc ? gc + n * d : nullptr;
      const T* x = X + n * m;
      const T* kn = k + n * d;
      const T* sn = s + n * dv;
      const T rh = rho[n], b = beta[n], br = b * rh;
      if constexpr (flat_dv<DV>()) {
        if (gn && gX && gk) {
          backward_node_flat<T, DV>(
              gn, gcn, x, kn, b, V + n * dv, w, rh, sn, gX + n * m,
              gk + n * d, gbeta ? gbeta + n : nullptr,
              gV ? gV + n * dv : nullptr, pw, flat.data(),
              flat.data() + m, flat.data() + 2 * m, flat.data() + 3 * m, d);
          continue;
        }
      }
      for (int64_t j = 0; j < dv; ++j) a[j] = 0;
      if (gn) dot_cols<T, DV>(kn, gn, d, dv, a);
      if (gcn) {                                     // + kᵀ(gc ⊗ w)
        for (int64_t f = 0; f < d; ++f) gck[f] = gcn[f] * kn[f];
        T* extra = ca;                               // scratch
        dot_cols<T, DV>(gck, w, d, dv, extra);
        for (int64_t j = 0; j < dv; ++j) a[j] += extra[j];
      }
      T proj = 0, gb = 0;
      for (int64_t j = 0; j < dv; ++j) {
        a[j] *= rh;                                  // a = k̂ᵀG
        r[j] = V[n * dv + j] - sn[j];
        c[j] = br * r[j];                            // X' = X + k cᵀ
        proj += a[j] * (r[j] - sn[j]);
        gb += a[j] * r[j];
        ca[j] = br * a[j];
        if (gV) gV[n * dv + j] = b * a[j];
      }
      if (gbeta) gbeta[n] = gb;
      const T kk = -rh * rh * b * proj;              // −ρ² β aᵀ(r − s)
      // dk[f] = βρ Σ_j (G r − X a)[f, j] + kk k[f];  dX = G − k (βρ a)ᵀ
      T* __restrict__ gxn = gX ? gX + n * m : nullptr;
      T* __restrict__ gkn = gk ? gk + n * d : nullptr;
      if (!gcn) {                                    // G = g
        for (int64_t f = 0; f < d; ++f) {
          const T* gf = gn + f * dv;
          const T* xf = x + f * dv;
          T acc = 0;
          for (int64_t j = 0; j < dv; ++j) acc += gf[j] * r[j] - xf[j] * a[j];
          if (gkn) gkn[f] = br * acc + kk * kn[f];
          if (gxn) {
            const T kf = kn[f];
            for (int64_t j = 0; j < dv; ++j) gxn[f * dv + j] = gf[j] - kf * ca[j];
          }
        }
      } else if (gn && gxn && gkn && pw) {           // G = g + gc ⊗ w
        for (int64_t f = 0; f < d; ++f) {            // (training: all)
          const T* gf = gn + f * dv;
          const T* xf = x + f * dv;
          const T* wf = w + f * dv;
          const T kf = kn[f], gcf = gcn[f];
          T acc = 0;
          for (int64_t j = 0; j < dv; ++j) {
            const T G = gf[j] + gcf * wf[j];
            acc += G * r[j] - xf[j] * a[j];
            gxn[f * dv + j] = G - kf * ca[j];
            pw[f * dv + j] += gcf * (xf[j] + kf * c[j]);
          }
          gkn[f] = br * acc + kk * kf;
        }
      } else {                                       // any subset
        for (int64_t f = 0; f < d; ++f) {
          const T* xf = x + f * dv;
          const T* wf = w + f * dv;
          const T kf = kn[f], gcf = gcn[f];
          T acc = 0;
          for (int64_t j = 0; j < dv; ++j) {
            const T G = (gn ? gn[f * dv + j] : T(0)) + gcf * wf[j];
            acc += G * r[j] - xf[j] * a[j];
            if (gxn) gxn[f * dv + j] = G - kf * ca[j];
            if (pw) pw[f * dv + j] += gcf * (xf[j] + kf * c[j]);
          }
          if (gkn) gkn[f] = br * acc + kk * kf;
        }
      }
     }
    }
  });
  if (gw)
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int64_t i = 0; i < m; ++i) gw[i] += part[blk * m + i];
}

template <typename scalar_t>
scalar_t* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<scalar_t>() : nullptr;
}

// -> (X', read or undefined, rho, s)
std::vector<at::Tensor> delta_forward(const at::Tensor& X, const at::Tensor& k,
                                      const at::Tensor& beta,
                                      const at::Tensor& V,
                                      const c10::optional<at::Tensor>& w,
                                      double eps) {
  check_state(X, "X");
  const int64_t N = X.size(0), d = X.size(1), dv = X.size(2);
  auto out = at::empty_like(X);
  auto rho = at::empty({N}, X.options());
  auto s = at::empty({N, dv}, X.options());
  at::Tensor wt = w.has_value() ? *w : at::Tensor();
  auto read = wt.defined() ? at::empty({N, d}, X.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "delta_forward", [&] {
    dispatch_dv(dv, [&](auto D) {
      forward_impl<scalar_t, decltype(D)::value>(
          X.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
          beta.data_ptr<scalar_t>(), V.data_ptr<scalar_t>(),
          ptr_or_null<scalar_t>(wt), static_cast<scalar_t>(eps),
          out.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(read),
          rho.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), N, d, dv);
    });
  });
  return {out, read, rho, s};
}

// needs: (X, k, beta, V, w) -> (dX, dk, dbeta, dV, dw), undefined where
// not needed; g or gc may be undefined (that output got no gradient).
std::vector<at::Tensor> delta_backward(const c10::optional<at::Tensor>& g,
                                       const c10::optional<at::Tensor>& gc,
                                       const at::Tensor& X,
                                       const at::Tensor& k,
                                       const at::Tensor& beta,
                                       const at::Tensor& V,
                                       const c10::optional<at::Tensor>& w,
                                       const at::Tensor& rho,
                                       const at::Tensor& s,
                                       std::vector<bool> needs) {
  check_state(X, "X");
  const int64_t N = X.size(0), d = X.size(1), dv = X.size(2);
  at::Tensor gt = g.has_value() ? *g : at::Tensor();
  at::Tensor gct = gc.has_value() ? *gc : at::Tensor();
  at::Tensor wt = w.has_value() ? *w : at::Tensor();
  if (gt.defined()) check_state(gt, "grad");
  auto gX = needs[0] ? at::empty_like(X) : at::Tensor();
  auto gk = needs[1] ? at::empty_like(k) : at::Tensor();
  auto gbeta = needs[2] ? at::empty_like(beta) : at::Tensor();
  auto gV = needs[3] ? at::empty_like(V) : at::Tensor();
  auto gw = (needs.size() > 4 && needs[4] && wt.defined())
                ? at::zeros_like(wt) : at::Tensor();
  if (!gct.defined() && gw.defined()) gw.zero_();
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "delta_backward", [&] {
    dispatch_dv(dv, [&](auto D) {
      backward_impl<scalar_t, decltype(D)::value>(
          ptr_or_null<scalar_t>(gt), ptr_or_null<scalar_t>(gct),
          X.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
          beta.data_ptr<scalar_t>(), V.data_ptr<scalar_t>(),
          gct.defined() ? ptr_or_null<scalar_t>(wt) : nullptr,
          rho.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
          ptr_or_null<scalar_t>(gX), ptr_or_null<scalar_t>(gk),
          ptr_or_null<scalar_t>(gbeta), ptr_or_null<scalar_t>(gV),
          gct.defined() ? ptr_or_null<scalar_t>(gw) : nullptr, N, d, dv);
    });
  });
  return {gX, gk, gbeta, gV, gw};
}

template <typename T, int DV>
void compress_forward_impl(const T* __restrict__ x, const T* __restrict__ c,
                           T* __restrict__ o, int64_t N, int64_t d,
                           int64_t dv_rt) {
  const int64_t dv = DV > 0 ? DV : dv_rt;
  at::parallel_for(0, N, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n)
      for (int64_t f = 0; f < d; ++f) {
        const T* xf = x + (n * d + f) * dv;
        T acc = 0;
        for (int64_t j = 0; j < dv; ++j) acc += c[f * dv + j] * xf[j];
        o[n * d + f] = acc;
      }
  });
}

template <typename T, int DV>
void compress_backward_impl(const T* __restrict__ g, const T* __restrict__ x,
                            const T* __restrict__ c, T* __restrict__ gx,
                            T* gw, int64_t N, int64_t d, int64_t dv_rt) {
  const int64_t dv = DV > 0 ? DV : dv_rt, m = d * dv;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  std::vector<T> part(gw ? blocks * m : 0, T(0));
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      T* __restrict__ acc = gw ? part.data() + b * m : nullptr;
      for (int64_t n = b * kBlock; n < std::min(N, (b + 1) * kBlock); ++n) {
        const T* gn = g + n * d;
        const T* xn = x + n * m;
        if (gx) {
          T* gxn = gx + n * m;
          for (int64_t f = 0; f < d; ++f)
            for (int64_t j = 0; j < dv; ++j)
              gxn[f * dv + j] = gn[f] * c[f * dv + j];
        }
        if (acc)
          for (int64_t f = 0; f < d; ++f)
            for (int64_t j = 0; j < dv; ++j)
              acc[f * dv + j] += gn[f] * xn[f * dv + j];
      }
    }
  });
  if (gw)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t i = 0; i < m; ++i) gw[i] += part[b * m + i];
}

// x[n, f] = Σ_j w[f, j] X[n, f, j]
at::Tensor compress_forward(const at::Tensor& X, const at::Tensor& w) {
  check_state(X, "X");
  const int64_t N = X.size(0), d = X.size(1), dv = X.size(2);
  auto out = at::empty({N, d}, X.options());
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "compress_forward", [&] {
    dispatch_dv(dv, [&](auto D) {
      compress_forward_impl<scalar_t, decltype(D)::value>(
          X.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
          out.data_ptr<scalar_t>(), N, d, dv);
    });
  });
  return out;
}

// dX[n, f, j] = g[n, f] w[f, j];  dw[f, j] = Σ_n g[n, f] X[n, f, j]
std::vector<at::Tensor> compress_backward(const at::Tensor& g,
                                          const at::Tensor& X,
                                          const at::Tensor& w, bool need_x,
                                          bool need_w) {
  check_state(X, "X");
  const int64_t N = X.size(0), d = X.size(1), dv = X.size(2);
  auto gX = need_x ? at::empty_like(X) : at::Tensor();
  auto gw = need_w ? at::zeros_like(w) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "compress_backward", [&] {
    dispatch_dv(dv, [&](auto D) {
      compress_backward_impl<scalar_t, decltype(D)::value>(
          g.data_ptr<scalar_t>(), X.data_ptr<scalar_t>(),
          w.data_ptr<scalar_t>(),
          need_x ? gX.data_ptr<scalar_t>() : nullptr,
          need_w ? gw.data_ptr<scalar_t>() : nullptr, N, d, dv);
    });
  });
  return {gX, gw};
}

}  // namespace

// csrc/message_function.cpp: the default layer's update as an autograd
// function.
std::vector<at::Tensor> anchored_message(
    const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, const at::Tensor&, const c10::optional<at::Tensor>&,
    const c10::optional<at::Tensor>&, double, double, double, bool, bool);
// csrc/axes_function.cpp: the channel-axes layer's update as one.
std::vector<at::Tensor> channel_axes(const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&,
                                     const at::Tensor&, const at::Tensor&,
                                     double, bool);
at::Tensor dropout_apply(const at::Tensor&, double, int64_t);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("delta_forward", &delta_forward);
  m.def("delta_backward", &delta_backward);
  m.def("compress_forward", &compress_forward);
  m.def("compress_backward", &compress_backward);
  m.def("message_forward", &message_forward);
  m.def("message_backward", &message_backward);
  m.def("message_gate_in_rows", &message_gate_in_rows);
  m.def("anchored_message", &anchored_message);
  m.def("channel_axes", &channel_axes);
  m.def("set_graph_backward", &set_graph_backward);
  m.def("axes_forward", &axes_forward);
  m.def("axes_backward", &axes_backward);
  m.def("dropout_apply", &dropout_apply);
}
