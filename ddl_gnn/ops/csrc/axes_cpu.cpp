// Fused CPU kernels of the channel-axes delta layer (nn/axes_path.py).
//
// With one head per channel along its axis the update is elementwise:
//   k = act(u),  x' = x + beta (k - x),
// act = ReLU or the identity, beta = s sigmoid(l) the gates (computed by
// the caller: two matrix products and a sigmoid). Backward, with
// r = k - x:
//   dx = g (1 - beta),  du = beta g act'(u),  dl = g r beta (1 - beta / s).
// Through autograd ops that is about ten passes over [N, d] each way (the
// activation, the difference, the product, and their gradients); here one
// pass forward and one backward, each element read once. The torch-op
// path of nn/axes_path.py is the reference (tests compare every gradient).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <vector>

#include "axes_cpu.h"

namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per task

template <typename T>
void forward_pass(const T* __restrict__ x, const T* __restrict__ u,
                  const T* __restrict__ beta, T* __restrict__ out,
                  bool relu, int64_t numel) {
  at::parallel_for(0, numel, kGrain, [&](int64_t lo, int64_t hi) {
    if (relu) {
      for (int64_t e = lo; e < hi; ++e) {
        const T k = u[e] > T(0) ? u[e] : T(0);
        out[e] = x[e] + beta[e] * (k - x[e]);
      }
    } else {
      for (int64_t e = lo; e < hi; ++e)
        out[e] = x[e] + beta[e] * (u[e] - x[e]);
    }
  });
}

// Branch-free in the element loop (the activation is a template
// argument), so that the compiler vectorises it.
template <typename T, bool Relu>
void backward_range(const T* __restrict__ g, const T* __restrict__ x,
                    const T* __restrict__ u, const T* __restrict__ beta,
                    T inv_scale, T* __restrict__ gx, T* __restrict__ gu,
                    T* __restrict__ dl, int64_t lo, int64_t hi) {
  for (int64_t e = lo; e < hi; ++e) {
    const T on = Relu ? (u[e] > T(0) ? T(1) : T(0)) : T(1);
    const T k = on * u[e];
    const T b = beta[e], ge = g[e];
    gx[e] = ge - b * ge;
    gu[e] = on * b * ge;
    dl[e] = ge * (k - x[e]) * b * (T(1) - b * inv_scale);
  }
}

void check(const at::Tensor& t, const at::Tensor& x, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "axes kernels: ",
              name, " must be a contiguous CPU tensor");
  TORCH_CHECK(t.sizes() == x.sizes() && t.scalar_type() == x.scalar_type(),
              "axes kernels: ", name, " must have x's shape and dtype, got ",
              t.sizes());
}

}  // namespace

// (x, u, beta [N, d]; relu) -> x + beta (act(u) - x).
at::Tensor axes_forward(const at::Tensor& x, const at::Tensor& u,
                        const at::Tensor& beta, bool relu) {
  for (auto* t : {&x, &u, &beta}) check(*t, x, "input");
  auto out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "axes_forward", [&] {
    forward_pass<scalar_t>(x.data_ptr<scalar_t>(), u.data_ptr<scalar_t>(),
                           beta.data_ptr<scalar_t>(),
                           out.data_ptr<scalar_t>(), relu, x.numel());
  });
  return out;
}

// (g, x, u, beta [N, d]; s, relu) -> (dx, du, dl), dl the gradient of the
// gate logits.
std::vector<at::Tensor> axes_backward(const at::Tensor& g, const at::Tensor& x,
                                      const at::Tensor& u,
                                      const at::Tensor& beta, double scale,
                                      bool relu) {
  for (auto* t : {&g, &x, &u, &beta}) check(*t, x, "input");
  auto gx = at::empty_like(x), gu = at::empty_like(x), dl = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "axes_backward", [&] {
    using T = scalar_t;
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t lo, int64_t hi) {
      auto pass = relu ? backward_range<T, true> : backward_range<T, false>;
      pass(g.data_ptr<T>(), x.data_ptr<T>(), u.data_ptr<T>(),
           beta.data_ptr<T>(), T(1.0 / scale), gx.data_ptr<T>(),
           gu.data_ptr<T>(), dl.data_ptr<T>(), lo, hi);
    });
  });
  return {gx, gu, dl};
}
