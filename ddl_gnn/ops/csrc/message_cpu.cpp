// Fused CPU kernels of the anchored-message delta layer (vector state).
//
// Per node and head (block of w = d / H features), with the gate
// logit l = Wc x + W0 x0 + b (W0 only for the 'anchor' gate):
//   k = h + alpha (x0 - h),  n = k.k,  q = k.x,  rho2 = 1 / (n + eps^2),
//   beta = s sigmoid(l),     x' = x + beta rho2 (n - q) k.
// Backward (a = k.g, r = n - q, c = beta rho2 r):
//   dx  = g - a beta rho2 k + Wc^T dl,       dl = a rho2 r beta (1 - beta/s)
//   dk  = c g - a beta rho2 x + 2 a beta rho2 (1 - rho2 r) k
//   dh  = (1 - alpha) dk,   dx0 = alpha dk + W0^T dl,
//   dW  = sum_n dl [x | x0],  db = sum_n dl.
// The kernels take the gates and return dl: the gate's own products
// (a dense weight's matrix products, a block gate's per-head sums) run as
// torch ops in the caller. Everything else is one pass over the rows in
// each direction, every row read once. Math: nn/message_path.py; the
// torch-op path there and the layer's generic path are the references
// (tests/nn/test_message_path.py).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>
#include <vector>

namespace {

constexpr int64_t kBlock = 256;  // rows per task

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

// Row pass of the forward; beta [N, H] holds the gates on entry.
template <typename T>
void forward_rows(const T* x, const T* h, const T* x0, T alpha, T eps,
                  T* out, const T* beta, T* kout, T* rho2, T* nn, T* qq,
                  int64_t N, int64_t d, int64_t H) {
  const int64_t w = d / H;
  if (w == 1) {  // one head per channel: an elementwise pass (vectorised)
    at::parallel_for(0, N * d, kBlock * d, [&](int64_t lo, int64_t hi) {
      for (int64_t e = lo; e < hi; ++e) {
        const T k = h[e] + alpha * (x0[e] - h[e]);
        const T n = k * k, q = k * x[e];
        const T r2 = T(1) / (n + eps * eps);
        out[e] = x[e] + beta[e] * r2 * (n - q) * k;
        if (kout) kout[e] = k;
        rho2[e] = r2;
        nn[e] = n;
        qq[e] = q;
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
      for (int64_t f = 0; f < d; ++f) k[f] = hr[f] + alpha * (x0i[f] - hr[f]);
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

// Row pass of the backward: dx and dx0 without their gate terms (added
// by the caller as products with the gate weight), dh, and dl [N, H].
template <typename T>
void backward_rows(const T* g, const T* x, const T* h, const T* x0,
                   const T* ksaved, const T* beta, const T* rho2,
                   const T* nn, const T* qq, T alpha, T scale, T* gx, T* gh,
                   T* gx0, T* dl, int64_t N, int64_t d, int64_t H) {
  const int64_t w = d / H;
  if (w == 1) {  // one head per channel: an elementwise pass (vectorised)
    const T one_a = T(1) - alpha;
    at::parallel_for(0, N * d, kBlock * d, [&](int64_t lo, int64_t hi) {
      for (int64_t e = lo; e < hi; ++e) {
        const T k = ksaved ? ksaved[e] : h[e] + alpha * (x0[e] - h[e]);
        const T a = k * g[e];
        const T bt = beta[e], r2 = rho2[e], r = nn[e] - qq[e];
        const T c = bt * r2 * r, abr = a * bt * r2;
        const T gk = c * g[e] - abr * x[e] + T(2) * abr * (T(1) - r2 * r) * k;
        dl[e] = a * r2 * r * bt * (T(1) - bt / scale);
        if (gx) gx[e] = g[e] - abr * k;
        if (gh) gh[e] = one_a * gk;
        if (gx0) gx0[e] = alpha * gk;
      }
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
        for (int64_t f = 0; f < d; ++f)
          kbuf[f] = hr[f] + alpha * (x0i[f] - hr[f]);
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

// (x, h, x0 [N, d]; beta [N, H], the gates) -> (x', k or undefined, rho2,
// n, q), the last three [N, H]: one pass over the rows.
std::vector<at::Tensor> message_forward(const at::Tensor& x,
                                        const at::Tensor& h,
                                        const at::Tensor& x0,
                                        const at::Tensor& beta, double alpha,
                                        double eps, bool save_k) {
  for (auto* t : {&x, &h, &x0, &beta}) check(*t, "input");
  TORCH_CHECK(beta.dim() == 2 && beta.size(0) == x.size(0) &&
                  beta.size(1) > 0 && x.size(1) % beta.size(1) == 0,
              "message_forward: bad gate shape ", beta.sizes());
  const int64_t N = x.size(0), d = x.size(1), H = beta.size(1);
  auto out = at::empty_like(x);
  auto o = x.options();
  auto rho2 = at::empty({N, H}, o), n = at::empty({N, H}, o);
  auto q = at::empty({N, H}, o);
  auto k = save_k ? at::empty_like(x) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_forward", [&] {
    using T = scalar_t;
    forward_rows<T>(ptr<T>(x), ptr<T>(h), ptr<T>(x0), T(alpha), T(eps),
                    ptr<T>(out), ptr<T>(beta), ptr<T>(k), ptr<T>(rho2),
                    ptr<T>(n), ptr<T>(q), N, d, H);
  });
  return {out, k, rho2, n, q};
}

// needs: (x, h, x0) -> (dx, dh, dx0, dl), the first three undefined where
// not needed, dx and dx0 without the gate's terms (the caller adds them
// with the gate's weight); k may be undefined (recomputed from h and x0).
std::vector<at::Tensor> message_backward(
    const at::Tensor& g, const at::Tensor& x, const at::Tensor& h,
    const at::Tensor& x0, const c10::optional<at::Tensor>& k,
    const at::Tensor& beta, const at::Tensor& rho2, const at::Tensor& n,
    const at::Tensor& q, double alpha, double scale,
    std::vector<bool> needs) {
  for (auto* t : {&g, &x, &h, &x0, &beta, &rho2, &n, &q}) check(*t, "input");
  at::Tensor kt = k.has_value() ? *k : at::Tensor();
  const int64_t N = x.size(0), d = x.size(1), H = beta.size(1);
  auto gx = needs[0] ? at::empty_like(x) : at::Tensor();
  auto gh = needs[1] ? at::empty_like(x) : at::Tensor();
  auto gx0 = needs[2] ? at::empty_like(x) : at::Tensor();
  auto dl = at::empty({N, H}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "message_backward", [&] {
    using T = scalar_t;
    backward_rows<T>(ptr<T>(g), ptr<T>(x), ptr<T>(h), ptr<T>(x0),
                     ptr<T>(kt), ptr<T>(beta), ptr<T>(rho2), ptr<T>(n),
                     ptr<T>(q), T(alpha), T(scale), ptr<T>(gx), ptr<T>(gh),
                     ptr<T>(gx0), ptr<T>(dl), N, d, H);
  });
  return {gx, gh, gx0, dl};
}
