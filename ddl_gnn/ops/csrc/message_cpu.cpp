// Fused CPU kernels of the anchored-message delta layer (vector state).
//
// Per node and head (block of w = d / H features), with the gate
// logit l = Wc x + W0 x0 + b (W0 only for the 'anchor' gate) and h the
// conv's output, its bias hb [d] added here where given (one pass over h
// and its gradient fewer than a separate add):
//   k = h + alpha (x0 - h),  n = k.k,  q = k.x,  rho2 = 1 / (n + eps^2),
//   beta = s sigmoid(l),     x' = x + beta rho2 (n - q) k.
// Backward (a = k.g, r = n - q, c = beta rho2 r):
//   dx  = g - a beta rho2 k + Wc^T dl,       dl = a rho2 r beta (1 - beta/s)
//   dk  = c g - a beta rho2 x + 2 a beta rho2 (1 - rho2 r) k
//   dh  = (1 - alpha) dk,   dx0 = alpha dk + W0^T dl,
//   dW  = sum_n dl [x | x0],  db = sum_n dl,  dhb = sum_n dh.
// In general the kernels take the gates and return dl: the gate's own
// products (a dense weight's matrix products, a block gate's per-head sums)
// run as torch ops in the caller. Float heads of eight features in groups
// of eight heads with a dense anchored gate (the default layer; W [H, 2d]
// = [Wc | W0] given) take an AVX2 path that computes the gate in the row
// pass too: forward, eight heads' logits are one vector (per row and head
// l = sum_f W[h, f] [x | x0][f] + b, then s sigmoid); backward, the row's
// dx and dx0 get Wc^T dl and W0^T dl, and dW, db are summed over the rows
// (per thread, over a fixed share of the rows, added in thread order: the
// same bits for a given thread count). That is six matrix products and
// about ten op dispatches per layer fewer. Everything else is one pass over
// the rows in each direction, every row read once. Math:
// nn/message_path.py; the torch-op path there and the layer's generic path
// are the references (tests/nn/test_message_path.py).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>
#include <type_traits>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif
#include <vector>

#include "message_cpu.h"

namespace {

constexpr int64_t kBlock = 256;  // rows per task
constexpr int64_t kSub = 32;     // rows per dW update of the gate in rows

// Σ a[f] b[f] over a short block (a head, w = d / H values): a pairwise
// tree over four partial sums (short dependency chains; fixed order).
template <typename T>
inline T dot(const T* a, const T* b, int64_t n) {
  T p0 = 0, p1 = 0, p2 = 0, p3 = 0;
  int64_t f = 0;
  for (; f + 4 <= n; f += 4) {
    p0 += a[f] * b[f];
    p1 += a[f + 1] * b[f + 1];
    p2 += a[f + 2] * b[f + 2];
    p3 += a[f + 3] * b[f + 3];
  }
  for (; f < n; ++f) p0 += a[f] * b[f];
  return (p0 + p2) + (p1 + p3);
}

#if defined(__AVX2__) && defined(__FMA__)
// float heads of eight features (w = 8, H % 8 == 0: the default layer at
// d = 64) with AVX2: a head is one vector. The generic row passes below sum
// each head's products on their own and then take a division and a handful
// of scalar products per head; here eight heads' sums come out of one
// transposing add tree and their per-head scalars are computed eight at a
// time (N = 2708, d = 64, one thread: forward 116 -> 49 us, backward
// 168 -> 74 us).
constexpr int64_t kW = 8;

// Lane j holds the sum of v[j]'s eight lanes.
inline __m256 head_sums(const __m256* v) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]),
                                  _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]),
                                  _mm256_hadd_ps(v[6], v[7]));
  // a: heads 0-3 (lower lanes' halves | upper lanes' halves), b: heads 4-7
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20),
                       _mm256_permute2f128_ps(a, b, 0x31));
}

inline bool heads_of_eight(int64_t d, int64_t H) {
  return d / H == kW && H % kW == 0;
}

// The row passes below interleave the gate's arithmetic with four or five
// input streams, and with the hardware prefetcher alone their loads waited
// on memory: each pass asks for the row kAhead rows on in every input
// (N = 2708, d = 64, one thread, inputs out of cache as in a deep stack:
// forward 315 -> 235 us, backward 440 -> 410 us; 2 and 16 rows on gained
// less, prefetching the rows to be written nothing).
constexpr int64_t kAhead = 8;

inline void prefetch_row(const float* p, int64_t d) {
  if (!p) return;
  for (int64_t f = 0; f < d; f += 16)
    _mm_prefetch(reinterpret_cast<const char*>(p + f), _MM_HINT_T0);
}

// The anchored direction k = h + alpha (x0 - h) of eight heads, h plus
// its bias hb where given.
inline void direction8(const float* h, const float* x0, const float* hb,
                       __m256 alpha, __m256* k) {
  for (int64_t j = 0; j < kW; ++j) {
    __m256 hv = _mm256_loadu_ps(h + j * kW);
    if (hb) hv = _mm256_add_ps(hv, _mm256_loadu_ps(hb + j * kW));
    k[j] = _mm256_fmadd_ps(alpha, _mm256_sub_ps(_mm256_loadu_ps(x0 + j * kW),
                                                hv), hv);
  }
}

// e^v, eight at a time (Cephes expf: v = n ln2 + r with |r| <= ln2 / 2,
// e^r = 1 + r + r^2 p(r) with p of degree 5, times 2^n from the exponent
// bits; within 2 ulp of expf over the clamped range, which keeps 2^n
// normal: sigmoid's tails there are below 1e-38 from 0 and 1).
inline __m256 exp8(__m256 v) {
  v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-87.3f)),
                    _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(
      _mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = v - n ln2, ln2 split in two so that n ln2's rounding is exact
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  for (const float c : {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                        1.6666665459e-1f, 5.0000001201e-1f})
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
  const __m256 er = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r,
                                    _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i two_n = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(er, _mm256_castsi256_ps(two_n));
}

// The vector the gate's products run on: eight floats (AVX2), or sixteen
// where the build has AVX-512 (cpu_kernels._isa_flags adds -mavx512f
// where the CPU has it). The gate is the arithmetic of the default layer's
// row passes (per row 1024 multiply-adds forward and 2048 backward against
// about 200 for the rest of the update) and its AVX2 loops ran at the
// core's 256-bit FMA rate. On a core with 512-bit FMA units (AMD EPYC,
// family 26; N = 2708, d = 64, one thread) the kernels' forward took
// 103 -> 90 us and their backward 172 -> 130 us: not half the gate's
// time, since every product also loads its weight. The other row passes
// stay on eight-lane vectors (a head is eight floats; their cost is
// memory, not arithmetic).
struct Lanes8 {
  using V = __m256;
  static constexpr int64_t n = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  // eight lanes whose sum is the sum of v's lanes
  static __m256 fold(V v) { return v; }
};
#if defined(__AVX512F__)
struct Lanes16 {
  using V = __m512;
  static constexpr int64_t n = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static __m256 fold(V v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(
                             _mm512_castps_pd(v), 1)));
  }
};
using GateLanes = Lanes16;
#else
using GateLanes = Lanes8;
#endif
// d is a multiple of 64 here (heads of eight in groups of eight heads), so
// of either vector's width: no remainder loops.

// dst[f] += src[f] over one row (d a multiple of eight): x0's gradient
// from this layer plus its link's, in the order autograd adds them.
inline void add_row(float* dst, const float* src, int64_t d) {
  for (int64_t f = 0; f < d; f += kW)
    _mm256_storeu_ps(dst + f, _mm256_add_ps(_mm256_loadu_ps(dst + f),
                                            _mm256_loadu_ps(src + f)));
}

// The gates of one row, beta[j] = s sigmoid(l_j) for heads j of the
// dense anchored gate, W [H, 2d] (row j: the x half, then the x0 half).
// Head j's logit is sum_f W[j, f] [x | x0][f]: eight accumulators (one per
// head of the group) over the row's vectors, folded to eight lanes, then
// one transposing add tree (the row's vectors are read once per group,
// each weight once). With the gate's exp: N = 2708, d = 64, one thread,
// 65 us against 150 us for the torch ops (two products, sigmoid, scale) on
// eight lanes; the backward's gate terms (gate_input_grad_row8,
// gate_weight_grad8) 115 us against 140 us, both near the rate of a large
// float GEMM on the same core.
inline void gate_row8(const float* x, const float* x0, const float* W,
                      const float* b, float scale, float* beta, int64_t d,
                      int64_t H) {
  using L = GateLanes;
  for (int64_t j0 = 0; j0 < H; j0 += kW) {
    const float* Wg = W + j0 * 2 * d;
    L::V acc[kW];
    for (int64_t j = 0; j < kW; ++j) acc[j] = L::zero();
    for (int64_t f = 0; f < d; f += L::n) {
      const L::V xv = L::load(x + f), x0v = L::load(x0 + f);
      for (int64_t j = 0; j < kW; ++j) {
        const float* Wj = Wg + j * 2 * d;
        acc[j] = L::fmadd(xv, L::load(Wj + f), acc[j]);
        acc[j] = L::fmadd(x0v, L::load(Wj + d + f), acc[j]);
      }
    }
    __m256 folded[kW];
    for (int64_t j = 0; j < kW; ++j) folded[j] = L::fold(acc[j]);
    const __m256 l = _mm256_add_ps(head_sums(folded),
                                   _mm256_loadu_ps(b + j0));
    // s sigmoid(l) = s / (1 + e^-l)
    _mm256_storeu_ps(beta + j0, _mm256_div_ps(
        _mm256_set1_ps(scale),
        _mm256_add_ps(_mm256_set1_ps(1.f),
                      exp8(_mm256_sub_ps(_mm256_setzero_ps(), l)))));
  }
}

// The dense anchored gate's terms of one row's dx and dx0, given its dl
// [H]: dx += Wc^T dl, dx0 += W0^T dl, in place where given (the row was
// just written: read back from L1).
inline void gate_input_grad_row8(const float* dl, const float* W, float* gx,
                                 float* gx0, int64_t d, int64_t H) {
  using L = GateLanes;
  for (int64_t j0 = 0; j0 < H; j0 += kW) {
    L::V dj[kW];
    for (int64_t j = 0; j < kW; ++j) dj[j] = L::set1(dl[j0 + j]);
    // the x half (p = 0) and the x0 half (p = 1) of W's rows
    for (int64_t p = 0; p < 2; ++p) {
      float* gv = p ? gx0 : gx;
      if (!gv) continue;
      const float* Wp = W + j0 * 2 * d + p * d;
      for (int64_t f = 0; f < d; f += L::n) {
        L::V acc = L::load(gv + f);
        for (int64_t j = 0; j < kW; ++j)
          acc = L::fmadd(dj[j], L::load(Wp + j * 2 * d + f), acc);
        L::store(gv + f, acc);
      }
    }
  }
}

// dW [H, 2d] += sum_i dl_i [x_i | x0_i] and db [H] += sum_i dl_i over
// `rows` rows (dl [rows, H], x and x0 at the first row; the rows were just
// read, so they are in L1). Each vector of dW is summed over the rows in
// registers, eight heads at a time, and touches memory once: summed
// row by row in memory it costs a load and a store per product, and
// the pass ran slower than the matrix products it replaces.
inline void gate_weight_grad8(const float* dl, const float* x,
                              const float* x0, int64_t rows, float* gW,
                              float* gb, int64_t d, int64_t H) {
  using L = GateLanes;
  for (int64_t j0 = 0; j0 < H; j0 += kW) {
    for (int64_t p = 0; p < 2; ++p) {
      const float* v = p ? x0 : x;
      for (int64_t f = 0; f < d; f += L::n) {
        float* out = gW + j0 * 2 * d + p * d + f;
        L::V acc[kW];
        for (int64_t j = 0; j < kW; ++j) acc[j] = L::load(out + j * 2 * d);
        for (int64_t i = 0; i < rows; ++i) {
          const L::V xv = L::load(v + i * d + f);
          for (int64_t j = 0; j < kW; ++j)
            acc[j] = L::fmadd(L::set1(dl[i * H + j0 + j]), xv, acc[j]);
        }
        for (int64_t j = 0; j < kW; ++j) L::store(out + j * 2 * d, acc[j]);
      }
    }
    __m256 s = _mm256_loadu_ps(gb + j0);
    for (int64_t i = 0; i < rows; ++i)
      s = _mm256_add_ps(s, _mm256_loadu_ps(dl + i * H + j0));
    _mm256_storeu_ps(gb + j0, s);
  }
}

// forward_rows for one row: heads [j0, j0 + 8) at a time, pointers at the
// row (x, h, x0, out, k: d values; beta, rho2, nn, qq: H values; rho2, nn
// and qq null where not kept).
inline void forward_row8(const float* x, const float* h, const float* x0,
                         const float* hb, float alpha, float eps2,
                         const float* beta,
                         float* out, float* kout, float* rho2, float* nn,
                         float* qq, int64_t H) {
  for (int64_t j0 = 0; j0 < H; j0 += kW) {
    const int64_t o = j0 * kW;
    __m256 k[kW], kk[kW], kx[kW];
    direction8(h + o, x0 + o, hb ? hb + o : nullptr, _mm256_set1_ps(alpha),
               k);
    for (int64_t j = 0; j < kW; ++j) {
      kk[j] = _mm256_mul_ps(k[j], k[j]);
      kx[j] = _mm256_mul_ps(k[j], _mm256_loadu_ps(x + o + j * kW));
      if (kout) _mm256_storeu_ps(kout + o + j * kW, k[j]);
    }
    const __m256 n = head_sums(kk), q = head_sums(kx);
    const __m256 r2 = _mm256_div_ps(_mm256_set1_ps(1.f),
                                    _mm256_add_ps(n, _mm256_set1_ps(eps2)));
    alignas(32) float c[kW];    // beta rho2 (n - q), one per head
    _mm256_store_ps(c, _mm256_mul_ps(
        _mm256_mul_ps(_mm256_loadu_ps(beta + j0), r2), _mm256_sub_ps(n, q)));
    if (rho2) {
      _mm256_storeu_ps(rho2 + j0, r2);
      _mm256_storeu_ps(nn + j0, n);
      _mm256_storeu_ps(qq + j0, q);
    }
    for (int64_t j = 0; j < kW; ++j) {
      const int64_t f = o + j * kW;
      _mm256_storeu_ps(out + f, _mm256_fmadd_ps(
          _mm256_set1_ps(c[j]), k[j], _mm256_loadu_ps(x + f)));
    }
  }
}

// backward_rows for one row, eight heads at a time (pointers at the row;
// ksaved may be null: k is then rebuilt from h and x0; rho2 may be null:
// rho2, n and q are then rebuilt from k and x, with forward_row8's
// operations, so to the same bits).
inline void backward_row8(const float* g, const float* x, const float* h,
                          const float* x0, const float* hb,
                          const float* ksaved,
                          const float* beta, const float* rho2,
                          const float* nn, const float* qq, float alpha,
                          float eps2, float scale, float* gx, float* gh,
                          float* gx0, float* dl, int64_t H) {
  for (int64_t j0 = 0; j0 < H; j0 += kW) {
    const int64_t o = j0 * kW;
    __m256 k[kW], kg[kW];
    if (ksaved) {
      for (int64_t j = 0; j < kW; ++j)
        k[j] = _mm256_loadu_ps(ksaved + o + j * kW);
    } else {
      direction8(h + o, x0 + o, hb ? hb + o : nullptr,
                 _mm256_set1_ps(alpha), k);
    }
    for (int64_t j = 0; j < kW; ++j)
      kg[j] = _mm256_mul_ps(k[j], _mm256_loadu_ps(g + o + j * kW));
    const __m256 a = head_sums(kg);
    const __m256 bt = _mm256_loadu_ps(beta + j0);
    __m256 r2, r;
    if (rho2) {
      r2 = _mm256_loadu_ps(rho2 + j0);
      r = _mm256_sub_ps(_mm256_loadu_ps(nn + j0), _mm256_loadu_ps(qq + j0));
    } else {
      __m256 kk[kW], kx[kW];
      for (int64_t j = 0; j < kW; ++j) {
        kk[j] = _mm256_mul_ps(k[j], k[j]);
        kx[j] = _mm256_mul_ps(k[j], _mm256_loadu_ps(x + o + j * kW));
      }
      const __m256 n = head_sums(kk);
      r2 = _mm256_div_ps(_mm256_set1_ps(1.f),
                         _mm256_add_ps(n, _mm256_set1_ps(eps2)));
      r = _mm256_sub_ps(n, head_sums(kx));
    }
    const __m256 one = _mm256_set1_ps(1.f);
    const __m256 abr = _mm256_mul_ps(_mm256_mul_ps(a, bt), r2);
    alignas(32) float c[kW], ab[kW], ck[kW];
    _mm256_store_ps(c, _mm256_mul_ps(_mm256_mul_ps(bt, r2), r));
    _mm256_store_ps(ab, abr);
    _mm256_store_ps(ck, _mm256_mul_ps(
        _mm256_add_ps(abr, abr),
        _mm256_sub_ps(one, _mm256_mul_ps(r2, r))));
    _mm256_storeu_ps(dl + j0, _mm256_mul_ps(
        _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(a, r2), r), bt),
        _mm256_sub_ps(one, _mm256_div_ps(bt, _mm256_set1_ps(scale)))));
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(1.f - alpha);
    for (int64_t j = 0; j < kW; ++j) {
      const int64_t f = o + j * kW;
      const __m256 gv = _mm256_loadu_ps(g + f);
      const __m256 nab = _mm256_set1_ps(-ab[j]);
      if (gx) _mm256_storeu_ps(gx + f, _mm256_fmadd_ps(nab, k[j], gv));
      // dk = c g - a beta rho2 x + 2 a beta rho2 (1 - rho2 r) k
      const __m256 gk = _mm256_fmadd_ps(
          _mm256_set1_ps(ck[j]), k[j],
          _mm256_fmadd_ps(nab, _mm256_loadu_ps(x + f),
                          _mm256_mul_ps(_mm256_set1_ps(c[j]), gv)));
      if (gh) _mm256_storeu_ps(gh + f, _mm256_mul_ps(vb, gk));
      if (gx0) _mm256_storeu_ps(gx0 + f, _mm256_mul_ps(va, gk));
    }
  }
}
#endif

// Row pass of the forward; beta [N, H] holds the gates on entry, or, with
// a dense anchored gate's W [H, 2d] and b [H] (heads_of_eight float AVX2
// rows only), receives them: the gate reads [c | x0], c the context where
// given (the dropped state in training), else x.
template <typename T>
void forward_rows(const T* x, const T* h, const T* x0, const T* c,
                  const T* hb, T alpha, T eps, T* out, T* beta, const T* W,
                  const T* b, T scale,
                  T* kout, T* rho2, T* nn, T* qq, int64_t N, int64_t d,
                  int64_t H) {
  const int64_t w = d / H;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float>) {
    if (heads_of_eight(d, H)) {
      at::parallel_for(0, N, kBlock, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          if (i + kAhead < hi) {
            const int64_t r = (i + kAhead) * d;
            for (const float* p : {x, h, x0, c})
              prefetch_row(p ? p + r : nullptr, d);
          }
          if (W)
            gate_row8((c ? c : x) + i * d, x0 + i * d, W, b, scale,
                      beta + i * H, d, H);
          forward_row8(x + i * d, h + i * d, x0 + i * d, hb, alpha,
                       eps * eps,
                       beta + i * H, out + i * d,
                       kout ? kout + i * d : nullptr,
                       rho2 ? rho2 + i * H : nullptr,
                       rho2 ? nn + i * H : nullptr,
                       rho2 ? qq + i * H : nullptr, H);
        }
      });
      return;
    }
  }
#endif
  // without a bias, h's own: zeros (the loops below stay branch-free)
  std::vector<T> zeros(hb ? 0 : d, T(0));
  const T* bias = hb ? hb : zeros.data();
  if (w == 1) {  // one head per channel: an elementwise pass (vectorised)
    // rho2, n and q are not kept: the backward recomputes them from k and
    // x, three [N, d] writes and reads fewer
    at::parallel_for(0, N, kBlock, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        for (int64_t f = 0; f < d; ++f) {
          const int64_t e = i * d + f;
          const T hv = h[e] + bias[f];
          const T k = hv + alpha * (x0[e] - hv);
          const T n = k * k, q = k * x[e];
          const T r2 = T(1) / (n + eps * eps);
          out[e] = x[e] + beta[e] * r2 * (n - q) * k;
          if (kout) kout[e] = k;
        }
      }
    });
    return;
  }
  at::parallel_for(0, N, kBlock, [&](int64_t lo, int64_t hi) {
    std::vector<T> kbuf(d);
    for (int64_t i = lo; i < hi; ++i) {
      const T* xi = x + i * d;
      const T* hr = h + i * d;
      const T* x0i = x0 + i * d;
      T* k = kout ? kout + i * d : kbuf.data();
      for (int64_t f = 0; f < d; ++f) {
        const T hv = hr[f] + bias[f];
        k[f] = hv + alpha * (x0i[f] - hv);
      }
      T* o = out + i * d;
      for (int64_t j = 0; j < H; ++j) {
        const T* kj = k + j * w;
        const T* xj = xi + j * w;
        const T n = dot(kj, kj, w), q = dot(kj, xj, w);
        const int64_t ij = i * H + j;
        const T r2 = T(1) / (n + eps * eps);
        const T c = beta[ij] * r2 * (n - q);
        T* oj = o + j * w;
        for (int64_t f = 0; f < w; ++f) oj[f] = xj[f] + c * kj[f];
        rho2[ij] = r2;
        nn[ij] = n;
        qq[ij] = q;
      }
    }
  });
}

// The backward with one head per channel over rows [lo, hi): n, q and
// rho2 recomputed from k and x (hb: h's bias, zeros where it has none).
// Written so that the compiler vectorises it (it ran 5x slower as a
// scalar loop): restrict-qualified pointers (with this many the compiler
// does not version the loop for aliasing), no branch inside (k saved or not is a template argument; gx,
// gh and gx0 are always written).
template <typename T, bool SavedK>
void backward_channels(const T* __restrict__ g, const T* __restrict__ x,
                       const T* __restrict__ h, const T* __restrict__ x0,
                       const T* __restrict__ hb,
                       const T* __restrict__ ksaved,
                       const T* __restrict__ beta, T alpha, T eps, T scale,
                       T* __restrict__ gx, T* __restrict__ gh,
                       T* __restrict__ gx0, T* __restrict__ dl, int64_t lo,
                       int64_t hi, int64_t d) {
  const T one_a = T(1) - alpha;
  for (int64_t i = lo; i < hi; ++i) {
    for (int64_t f = 0; f < d; ++f) {
      const int64_t e = i * d + f;
      const T hv = SavedK ? T(0) : h[e] + hb[f];
      const T k = SavedK ? ksaved[e] : hv + alpha * (x0[e] - hv);
      const T a = k * g[e];
      const T n = k * k, r = n - k * x[e];
      const T bt = beta[e], r2 = T(1) / (n + eps * eps);
      const T c = bt * r2 * r, abr = a * bt * r2;
      const T gk = c * g[e] - abr * x[e] + T(2) * abr * (T(1) - r2 * r) * k;
      dl[e] = a * r2 * r * bt * (T(1) - bt / scale);
      gx[e] = g[e] - abr * k;
      gh[e] = one_a * gk;
      gx0[e] = alpha * gk;
    }
  }
}

// Row pass of the backward: dx and dx0 without their gate terms (added
// by the caller as products with the gate weight), dh, and dl [N, H].
// With one head per channel rho2, n and q are null (recomputed here), and
// for float heads of eight they may be (rebuilt in backward_row8).
// With a dense anchored gate's W [H, 2d] (heads_of_eight float AVX2 rows
// only) the gate's terms are added here instead, dl is not kept, and gW
// [H, 2d] and gb [H] (where given) receive dW and db; a gate that read a
// context c sends its term to gc (written here; the gate's input) instead
// of gx. With the gate in the rows, gnext (where given: the gradient of
// x0's link, the later layers' sum) is added to each row of gx0 last, as
// autograd would add the two.
template <typename T>
void backward_rows(const T* g, const T* x, const T* h, const T* x0,
                   const T* c, const T* hb, const T* ksaved, const T* beta,
                   const T* rho2, const T* nn, const T* qq, const T* W,
                   const T* gnext, T alpha, T eps, T scale, T* gx, T* gh,
                   T* gx0, T* gc, T* dl, T* gW, T* gb, T* ghb, int64_t N,
                   int64_t d, int64_t H) {
  const int64_t w = d / H;
#if defined(__AVX2__) && defined(__FMA__)
  if constexpr (std::is_same_v<T, float>) {
    if (heads_of_eight(d, H)) {
      // dW and db: a partial sum per thread over a fixed share of the
      // rows, added up in thread order at the end (the same sums for a
      // given thread count; one buffer per thread: a buffer per block of
      // rows, at 10k rows, cost more page faults than its products)
      const int64_t blocks = (N + kBlock - 1) / kBlock, P = H * 2 * d + H;
      const int64_t shares = std::max<int64_t>(
          1, std::min<int64_t>(at::get_num_threads(), blocks));
      const int64_t per = (blocks + shares - 1) / shares;
      std::vector<float> part(gW ? shares * P : 0, 0.f);
      // dhb, dh's column sum, likewise (dh's row read back from L1)
      std::vector<float> hpart(ghb ? shares * d : 0, 0.f);
      at::parallel_for(0, shares, 1, [&](int64_t t0, int64_t t1) {
        // dl of the rows since the last dW update (kSub rows: their x and
        // x0 rows stay in L1 until it)
        std::vector<float> dlbuf(W ? kSub * H : 0);
        for (int64_t t = t0; t < t1; ++t) {
          float* pw = gW ? part.data() + t * P : nullptr;
          float* ph = ghb ? hpart.data() + t * d : nullptr;
          const int64_t end = std::min(N, (t + 1) * per * kBlock);
          for (int64_t i0 = t * per * kBlock; i0 < end; i0 += kSub) {
            const int64_t i1 = std::min(end, i0 + kSub);
            for (int64_t i = i0; i < i1; ++i) {
              const int64_t r = i * d, s = i * H;
              if (i + kAhead < end)
                for (const float* p :
                     {g, x, ksaved ? ksaved : h, x0, c, gnext})
                  prefetch_row(p ? p + r + kAhead * d : nullptr, d);
              float* dli = W ? dlbuf.data() + (i - i0) * H : dl + s;
              float* gxi = gx ? gx + r : nullptr;
              float* gx0i = gx0 ? gx0 + r : nullptr;
              backward_row8(g + r, x + r, h + r, x0 + r, hb,
                            ksaved ? ksaved + r : nullptr, beta + s,
                            rho2 ? rho2 + s : nullptr,
                            rho2 ? nn + s : nullptr,
                            rho2 ? qq + s : nullptr, alpha, eps * eps,
                            scale, gxi, gh ? gh + r : nullptr, gx0i, dli,
                            H);
              if (ph)
                for (int64_t f = 0; f < d; ++f) ph[f] += gh[r + f];
              if (W && c) {
                float* gci = gc ? gc + r : nullptr;
                if (gci) std::fill(gci, gci + d, 0.f);
                gate_input_grad_row8(dli, W, gci, gx0i, d, H);
              } else if (W) {
                gate_input_grad_row8(dli, W, gxi, gx0i, d, H);
              }
              if (gnext && gx0i) add_row(gx0i, gnext + r, d);
            }
            if (pw)
              gate_weight_grad8(dlbuf.data(), (c ? c : x) + i0 * d,
                                x0 + i0 * d, i1 - i0, pw, pw + H * 2 * d, d,
                                H);
          }
        }
      });
      if (gW) {
        for (int64_t e = 0; e < P; ++e) {
          float sum = 0.f;
          for (int64_t t = 0; t < shares; ++t) sum += part[t * P + e];
          (e < H * 2 * d ? gW[e] : gb[e - H * 2 * d]) = sum;
        }
      }
      for (int64_t f = 0; ghb && f < d; ++f) {
        float sum = 0.f;
        for (int64_t t = 0; t < shares; ++t) sum += hpart[t * d + f];
        ghb[f] = sum;
      }
      return;
    }
  }
#endif
  std::vector<T> zeros(hb ? 0 : d, T(0));
  const T* bias = hb ? hb : zeros.data();
  if (w == 1) {  // one head per channel: an elementwise pass (vectorised)
    at::parallel_for(0, N, kBlock, [&](int64_t lo, int64_t hi) {
      auto pass = ksaved ? backward_channels<T, true>
                         : backward_channels<T, false>;
      pass(g, x, h, x0, bias, ksaved, beta, alpha, eps, scale, gx, gh, gx0,
           dl, lo, hi, d);
    });
    return;
  }
  at::parallel_for(0, N, kBlock, [&](int64_t lo, int64_t hi) {
    std::vector<T> kbuf(d), gk(d);
    for (int64_t i = lo; i < hi; ++i) {
      const T* gi = g + i * d;
      const T* xi = x + i * d;
      const T* x0i = x0 + i * d;
      const T* k;
      if (ksaved) {
        k = ksaved + i * d;
      } else {
        const T* hr = h + i * d;
        for (int64_t f = 0; f < d; ++f) {
          const T hv = hr[f] + bias[f];
          kbuf[f] = hv + alpha * (x0i[f] - hv);
        }
        k = kbuf.data();
      }
      for (int64_t j = 0; j < H; ++j) {
        const int64_t ij = i * H + j;
        const T* kj = k + j * w;
        const T* gj = gi + j * w;
        const T* xj = xi + j * w;
        const T a = dot(kj, gj, w);
        const T bt = beta[ij], r2 = rho2[ij], r = nn[ij] - qq[ij];
        const T c = bt * r2 * r, abr = a * bt * r2;
        const T ck = T(2) * abr * (T(1) - r2 * r);
        dl[ij] = a * r2 * r * bt * (T(1) - bt / scale);
        T* gkj = gk.data() + j * w;
        for (int64_t f = 0; f < w; ++f)
          gkj[f] = c * gj[f] - abr * xj[f] + ck * kj[f];
        if (gx) {
          T* gxj = gx + i * d + j * w;
          for (int64_t f = 0; f < w; ++f) gxj[f] = gj[f] - abr * kj[f];
        }
      }
      if (gh) {
        T* ghi = gh + i * d;
        const T one_a = T(1) - alpha;
        for (int64_t f = 0; f < d; ++f) ghi[f] = one_a * gk[f];
      }
      if (gx0) {
        T* g0 = gx0 + i * d;
        for (int64_t f = 0; f < d; ++f) g0[f] = alpha * gk[f];
      }
    }
  });
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

}  // namespace

// Whether the row passes compute a dense anchored gate themselves for x
// with H heads: float heads of eight features in groups of eight heads, in
// a build with AVX2 and FMA.
bool message_gate_in_rows(const at::Tensor& x, int64_t H) {
#if defined(__AVX2__) && defined(__FMA__)
  return x.scalar_type() == at::kFloat && x.dim() == 2 && H > 0 &&
         x.size(1) % H == 0 && heads_of_eight(x.size(1), H);
#else
  (void)x;
  (void)H;
  return false;
#endif
}

namespace {

// Whether the forward keeps the per-head scalars rho2, n and q [N, H] for
// the backward: not with one head per channel, nor for float heads of eight
// in an AVX2 build, whose backward row pass rebuilds them from k and x
// with the forward's operations (three [N, H] allocations, writes and
// reads fewer a layer for about 30 vector operations a row).
bool head_scalars_kept(const at::Tensor& x, int64_t H) {
  const int64_t d = x.size(1);
  if (d == H) return false;
#if defined(__AVX2__) && defined(__FMA__)
  if (x.scalar_type() == at::kFloat && heads_of_eight(d, H)) return false;
#endif
  return true;
}

// W [H, 2d] and b [H] of a dense anchored gate the row passes compute.
void check_gate(const at::Tensor& x, const at::Tensor& W,
                const c10::optional<at::Tensor>& b, const char* what) {
  check(W, "W");
  TORCH_CHECK(W.dim() == 2 && W.size(1) == 2 * x.size(1) &&
                  W.scalar_type() == x.scalar_type(),
              what, ": the gate weight must be [H, 2d] of x's dtype, got ",
              W.sizes());
  TORCH_CHECK(message_gate_in_rows(x, W.size(0)), what,
              ": the gate is computed in the row passes only for float "
              "heads of eight features in groups of eight heads on AVX2");
  if (b.has_value()) {
    check(*b, "b");
    TORCH_CHECK(b->numel() == W.size(0) && b->scalar_type() == x.scalar_type(),
                what, ": the gate bias must be [H] of x's dtype");
  }
}

// c [N, d], the gate's context, like x.
void check_context(const at::Tensor& x, const at::Tensor& c,
                   const char* what) {
  check(c, "context");
  TORCH_CHECK(c.sizes() == x.sizes() && c.scalar_type() == x.scalar_type(),
              what, ": the context must have x's shape and dtype, got ",
              c.sizes());
}

// hb [d], the bias of h, like x.
void check_bias(const at::Tensor& x, const at::Tensor& hb, const char* what) {
  check(hb, "h's bias");
  TORCH_CHECK(hb.dim() == 1 && hb.size(0) == x.size(1) &&
                  hb.scalar_type() == x.scalar_type(),
              what, ": h's bias must be [d] of x's dtype, got ", hb.sizes());
}

at::Tensor given(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? *t : at::Tensor();
}

}  // namespace

// (x, h, x0 [N, d]; beta [N, H], the gates, or the dense anchored gate's
// W [H, 2d] and b [H] (message_gate_in_rows): the gates are then computed
// in the row pass from [c | x0], c the context [N, d] where given, else x;
// scale s; hb [d], h's bias, where given) -> (x', beta, k or undefined,
// rho2, n, q), the last three [N, H], undefined where the backward
// rebuilds them (head_scalars_kept): one pass over the rows.
std::vector<at::Tensor> message_forward(
    const at::Tensor& x, const at::Tensor& h, const at::Tensor& x0,
    const c10::optional<at::Tensor>& beta_,
    const c10::optional<at::Tensor>& W_, const c10::optional<at::Tensor>& b_,
    double alpha, double eps, double scale, bool save_k,
    const c10::optional<at::Tensor>& c_,
    const c10::optional<at::Tensor>& hb_) {
  for (auto* t : {&x, &h, &x0}) check(*t, "input");
  TORCH_CHECK(beta_.has_value() != W_.has_value() &&
                  W_.has_value() == b_.has_value(),
              "message_forward: pass the gates beta, or the gate's W and b");
  at::Tensor beta = given(beta_), W = given(W_), b = given(b_), c = given(c_),
             hb = given(hb_);
  if (hb.defined()) check_bias(x, hb, "message_forward");
  if (W.defined()) {
    check_gate(x, W, b_, "message_forward");
    beta = at::empty({x.size(0), W.size(0)}, x.options());
  }
  if (c.defined()) {
    TORCH_CHECK(W.defined(), "message_forward: a context is read by the "
                "gate the row pass computes; pass W and b with it");
    check_context(x, c, "message_forward");
  }
  check(beta, "beta");
  TORCH_CHECK(beta.dim() == 2 && beta.size(0) == x.size(0) &&
                  beta.size(1) > 0 && x.size(1) % beta.size(1) == 0,
              "message_forward: bad gate shape ", beta.sizes());
  const int64_t N = x.size(0), d = x.size(1), H = beta.size(1);
  auto out = at::empty_like(x);
  auto o = x.options();
  const bool keep = head_scalars_kept(x, H);
  auto rho2 = keep ? at::empty({N, H}, o) : at::Tensor();
  auto n = keep ? at::empty({N, H}, o) : at::Tensor();
  auto q = keep ? at::empty({N, H}, o) : at::Tensor();
  auto k = save_k ? at::empty_like(x) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_forward", [&] {
    using T = scalar_t;
    forward_rows<T>(ptr<T>(x), ptr<T>(h), ptr<T>(x0), ptr<T>(c), ptr<T>(hb),
                    T(alpha),
                    T(eps), ptr<T>(out), ptr<T>(beta), ptr<T>(W), ptr<T>(b),
                    T(scale), ptr<T>(k), ptr<T>(rho2), ptr<T>(n), ptr<T>(q),
                    N, d, H);
  });
  return {out, beta, k, rho2, n, q};
}

// needs: (x, h, x0, W, b, c, hb) -> (dx, dh, dx0, dW, db, dl, dc, dhb),
// undefined where
// not needed; k may be undefined (recomputed from h and x0), and so may
// rho2, n and q where the forward did not keep them (head_scalars_kept;
// rebuilt from k and x). Without W,
// dx and dx0 lack the gate's terms, dW and db are undefined and dl [N, H]
// is returned (the caller applies the gate's weight); with the dense
// anchored gate's W (message_gate_in_rows) the row pass applies it and dl
// is undefined. With a context c (the gate's input in the forward, with
// W) the gate's input term is dc, and dx lacks it. hb, h's bias where the
// forward took one, enters the recomputed k; its gradient dhb (last) is
// dh's column sum. gnext [N, d] (with W, where given) is the gradient of
// x0's link (csrc/message_function.cpp), added to dx0 last.
std::vector<at::Tensor> message_backward(
    const at::Tensor& g, const at::Tensor& x, const at::Tensor& h,
    const at::Tensor& x0, const c10::optional<at::Tensor>& k,
    const at::Tensor& beta, const c10::optional<at::Tensor>& rho2_,
    const c10::optional<at::Tensor>& n_,
    const c10::optional<at::Tensor>& q_,
    const c10::optional<at::Tensor>& W_, double alpha, double eps,
    double scale, std::vector<bool> needs,
    const c10::optional<at::Tensor>& c_,
    const c10::optional<at::Tensor>& hb_,
    const c10::optional<at::Tensor>& gnext_) {
  at::Tensor kt = given(k), rho2 = given(rho2_), n = given(n_),
             q = given(q_), W = given(W_), c = given(c_), hb = given(hb_),
             gnext = given(gnext_);
  if (hb.defined()) check_bias(x, hb, "message_backward");
  for (auto* t : {&g, &x, &h, &x0, &beta}) check(*t, "input");
  TORCH_CHECK(needs.size() == 7, "message_backward: needs has seven flags "
              "(x, h, x0, W, b, c, hb)");
  const int64_t N = x.size(0), d = x.size(1), H = beta.size(1);
  if (W.defined()) {
    check_gate(x, W, c10::nullopt, "message_backward");
    TORCH_CHECK(W.size(0) == H, "message_backward: W and beta disagree on H");
  }
  if (c.defined()) {
    TORCH_CHECK(W.defined(), "message_backward: a context needs the gate's "
                "W (the row pass's gate)");
    check_context(x, c, "message_backward");
  }
  if (gnext.defined()) {
    TORCH_CHECK(W.defined(), "message_backward: x0's link gradient is added "
                "after the gate's terms, in the row pass's gate (W)");
    check(gnext, "x0's link gradient");
    TORCH_CHECK(gnext.sizes() == x.sizes() &&
                    gnext.scalar_type() == x.scalar_type(),
                "message_backward: x0's link gradient must have x's shape "
                "and dtype, got ", gnext.sizes());
  }
  TORCH_CHECK(!head_scalars_kept(x, H) ||
                  (rho2.defined() && n.defined() && q.defined()),
              "message_backward: rho2, n and q are needed with these heads "
              "(the row pass rebuilds them only with one head per channel "
              "and for float heads of eight)");
  TORCH_CHECK(rho2.defined() == n.defined() && n.defined() == q.defined(),
              "message_backward: give rho2, n and q together or none");
  for (auto* t : {&rho2, &n, &q})
    if (t->defined()) check(*t, "input");
  // with one head per channel all three are written (a pass without
  // branches) and the unneeded ones dropped
  auto grad = [&](bool need) {
    return need || d == H ? at::empty_like(x) : at::Tensor();
  };
  const bool need_hb = hb.defined() && needs[6];
  // hb's gradient is dh's column sum: dh is computed for it
  auto gx = grad(needs[0]), gh = grad(needs[1] || need_hb),
       gx0 = grad(needs[2]);
  const bool need_w = W.defined() && (needs[3] || needs[4]);
  auto gW = need_w ? at::empty_like(W) : at::Tensor();
  auto gb = need_w ? at::empty({H}, x.options()) : at::Tensor();
  auto dl = W.defined() ? at::Tensor() : at::empty({N, H}, x.options());
  auto gc = c.defined() && needs[5] ? at::empty_like(x) : at::Tensor();
  // summed in the AVX2 row pass of heads of eight, else after the pass
  const bool rows_sum = need_hb && message_gate_in_rows(x, H);
  auto ghb = rows_sum ? at::empty({d}, x.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_backward", [&] {
    using T = scalar_t;
    backward_rows<T>(ptr<T>(g), ptr<T>(x), ptr<T>(h), ptr<T>(x0), ptr<T>(c),
                     ptr<T>(hb), ptr<T>(kt), ptr<T>(beta), ptr<T>(rho2),
                     ptr<T>(n), ptr<T>(q), ptr<T>(W), ptr<T>(gnext),
                     T(alpha), T(eps), T(scale),
                     ptr<T>(gx), ptr<T>(gh), ptr<T>(gx0), ptr<T>(gc),
                     ptr<T>(dl), ptr<T>(gW), ptr<T>(gb), ptr<T>(ghb), N, d,
                     H);
  });
  if (need_hb && !rows_sum) ghb = gh.sum(0);
  auto keep = [](bool need, const at::Tensor& t) {
    return need ? t : at::Tensor();
  };
  return {keep(needs[0], gx), keep(needs[1], gh), keep(needs[2], gx0),
          keep(needs[3], gW), keep(needs[4], gb), dl, gc, ghb};
}
