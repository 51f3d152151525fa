// The default layer's anchored-message update (nn/message_path.py) as an
// autograd function written in C++: the row passes of csrc/message_cpu.cpp
// with the dense anchored gate computed in the rows, forward and backward
// dispatched without Python. A Python autograd function costs tens of
// microseconds a layer in each direction (its context object, the
// saved-tensor records, the engine's call back into Python), a visible
// share of a deep stack's step on a small graph. A backward that must
// itself be differentiable (create_graph=True) calls the Python reference
// registered under "anchored_message" (csrc/graph_backward.h).
//
// With x0_link it also returns x0's link: x0 itself (a view of it, with
// this node as its history) for the next layer to read as its x0. Its
// gradient, the later layers' sum, is added to this layer's dx0 in the
// backward row pass, instead of autograd adding every layer's dx0 to x0's
// gradient in a pass of its own (two reads and a write of N x d a layer).
// Added last, as autograd adds them, it gives the same sums bit for bit.
#include <torch/extension.h>

#include <algorithm>
#include <vector>

#include "graph_backward.h"
#include "message_cpu.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

c10::optional<at::Tensor> opt(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

c10::optional<at::Tensor> contiguous(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? c10::optional<at::Tensor>(t->contiguous())
                       : c10::nullopt;
}

}  // namespace

namespace ddl_gnn {  // named: the profiler shows CppNode<ddl_gnn::...>

// Saved: x, h, x0, W, b, c, hb (the inputs; c, hb undefined where not
// given), beta, k (undefined where recomputed). No per-head scalars: with
// the gate in the rows (float heads of eight) the forward keeps none and
// the backward row pass rebuilds them (head_scalars_kept).
struct AnchoredMessage : torch::autograd::Function<AnchoredMessage> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x,
                               const at::Tensor& h, const at::Tensor& x0,
                               const at::Tensor& W, const at::Tensor& b,
                               const c10::optional<at::Tensor>& c,
                               const c10::optional<at::Tensor>& hb,
                               double alpha, double eps, double scale,
                               bool save_k, bool x0_link) {
    const auto xc = x.contiguous(), hc = h.contiguous(),
               x0c = x0.contiguous(), Wc = W.contiguous(),
               bc = b.contiguous();
    const auto cc = contiguous(c), hbc = contiguous(hb);
    auto r = message_forward(xc, hc, x0c, c10::nullopt, Wc, bc, alpha, eps,
                             scale, save_k, cc, hbc);
    // r: (x', beta, k, rho2, n, q)
    ctx->save_for_backward({xc, hc, x0c, Wc, bc, cc.value_or(at::Tensor()),
                            hbc.value_or(at::Tensor()), r[1], r[2]});
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["scale"] = scale;
    ctx->mark_non_differentiable({r[1]});
    // an unused x' gives no gradient rather than a tensor of zeros
    ctx->set_materialize_grads(false);
    // x0 returned unmodified: autograd makes it a view with this history
    if (x0_link) return {r[0], r[1], x0};
    return {r[0], r[1]};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const double alpha = ctx->saved_data["alpha"].toDouble(),
                 eps = ctx->saved_data["eps"].toDouble(),
                 scale = ctx->saved_data["scale"].toDouble();
    // needs_input_grad counts the tensors given: c and hb where given
    std::vector<bool> needs(7, false);
    size_t edge = 0;
    for (size_t i = 0; i < 7; ++i)
      if (i < 5 || s[i].defined()) needs[i] = ctx->needs_input_grad(edge++);
    // one entry per argument of forward (the five others get none)
    variable_list out(12);
    const at::Tensor& g = grads[0];
    // the gradient of x0's link, the later layers' (undefined without one)
    const at::Tensor gnext = grads.size() > 2 ? grads[2] : at::Tensor();
    if (!g.defined()) {
      if (needs[2]) out[2] = gnext;
      return out;
    }
    if (at::GradMode::is_enabled()) {
      // create_graph: the saved tensors carry their history; differentiate
      // the Python reference with a graph
      auto got = call_graph_backward("anchored_message", 7, s[0], s[1], s[2],
                                     s[3], s[4], opt(s[5]), opt(s[6]), g,
                                     alpha, eps, scale, needs);
      std::copy(got.begin(), got.end(), out.begin());
      if (gnext.defined() && needs[2])
        out[2] = out[2].defined() ? out[2] + gnext : gnext;
      return out;
    }
    auto r = message_backward(
        g.contiguous(), s[0], s[1], s[2], opt(s[8]), s[7], c10::nullopt,
        c10::nullopt, c10::nullopt, s[3], alpha, eps, scale, needs, opt(s[5]),
        opt(s[6]), gnext.defined() && needs[2]
                       ? c10::optional<at::Tensor>(gnext.contiguous())
                       : c10::nullopt);
    // r: (dx, dh, dx0, dW, db, dl, dc, dhb)
    const int from[7] = {0, 1, 2, 3, 4, 6, 7};
    for (size_t i = 0; i < 7; ++i) out[i] = r[from[i]];
    return out;
  }
};

}  // namespace ddl_gnn

// (x, h, x0 [N, d], W [H, 2d], b [H] of the dense anchored gate
// (message_gate_in_rows), the gate's context c [N, d] or None, h's bias hb
// [d] or None, alpha, eps, scale, save_k, x0_link) -> (x', beta [N, H]),
// and x0's link with x0_link; beta without gradient; differentiable in x,
// h, x0, W, b, c and hb, to any order (beyond the first through the
// registered reference).
std::vector<at::Tensor> anchored_message(
    const at::Tensor& x, const at::Tensor& h, const at::Tensor& x0,
    const at::Tensor& W, const at::Tensor& b,
    const c10::optional<at::Tensor>& c, const c10::optional<at::Tensor>& hb,
    double alpha, double eps, double scale, bool save_k, bool x0_link) {
  return ddl_gnn::AnchoredMessage::apply(x, h, x0, W, b, c, hb, alpha, eps,
                                         scale, save_k, x0_link);
}
