// The channel-axes layer's update (nn/axes_path.py) as an autograd
// function written in C++: the gate's logits as two products into one
// buffer, s sigmoid in place, the update's pass of csrc/axes_cpu.cpp, and
// backward that pass with the gate's four products, dispatched without
// Python (a Python autograd function and its ten torch calls cost tens of
// microseconds a layer each way, a visible share of a deep stack's step
// on a small graph). A backward that must itself be differentiable
// (create_graph=True) calls the Python reference registered under
// "channel_axes" (csrc/graph_backward.h).
#include <torch/extension.h>

#include <algorithm>
#include <vector>

#include "axes_cpu.h"
#include "graph_backward.h"

namespace ddl_gnn {  // named: the profiler shows CppNode<ddl_gnn::...>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Saved: x, u, c, x0, W, b, beta.
struct ChannelAxes : torch::autograd::Function<ChannelAxes> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x,
                               const at::Tensor& u, const at::Tensor& c,
                               const at::Tensor& x0, const at::Tensor& W,
                               const at::Tensor& b, double scale,
                               bool relu) {
    const int64_t d = x.size(1);
    // as nn/message_path.py's gate_logit: addmm's backward does not read
    // its output, so the second product is added in place
    auto beta = at::addmm(b, c, W.narrow(1, 0, d).t());
    beta.addmm_(x0, W.narrow(1, d, d).t());
    beta.sigmoid_().mul_(scale);
    const auto xc = x.contiguous(), uc = u.contiguous();
    auto out = axes_forward(xc, uc, beta, relu);
    ctx->save_for_backward({xc, uc, c, x0, W, b, beta});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["relu"] = relu;
    ctx->mark_non_differentiable({beta});
    // an unused x' gives no gradient rather than a tensor of zeros
    ctx->set_materialize_grads(false);
    return {out, beta};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const double scale = ctx->saved_data["scale"].toDouble();
    const bool relu = ctx->saved_data["relu"].toBool();
    // one entry per argument of forward (the two flags get none)
    variable_list out(8);
    const at::Tensor& g = grads[0];
    if (!g.defined()) return out;
    std::vector<bool> needs(6);
    for (size_t i = 0; i < 6; ++i) needs[i] = ctx->needs_input_grad(i);
    if (at::GradMode::is_enabled()) {
      // create_graph: the saved tensors carry their history; differentiate
      // the Python reference with a graph
      auto got = call_graph_backward("channel_axes", 6, s[0], s[1], s[2],
                                     s[3], s[4], s[5], g, scale, relu, needs);
      std::copy(got.begin(), got.end(), out.begin());
      return out;
    }
    const auto &x = s[0], &c = s[2], &x0 = s[3], &W = s[4];
    auto r = axes_backward(g.contiguous(), x, s[1], s[6], scale, relu);
    const auto& dl = r[2];
    const int64_t d = x.size(1);
    out[0] = r[0];
    out[1] = r[1];
    if (needs[2]) out[2] = dl.mm(W.narrow(1, 0, d));
    if (needs[3]) out[3] = dl.mm(W.narrow(1, d, d));
    if (needs[4]) {
      const auto dlt = dl.t();
      out[4] = at::cat({dlt.mm(c), dlt.mm(x0)}, 1);
    }
    if (needs[5]) out[5] = dl.sum(0);
    return out;
  }
};

}  // namespace ddl_gnn

// (x, u, c, x0 [N, d], W [d, 2d], b [d], scale, relu) -> (x', beta
// [N, d]), beta without gradient; differentiable in x, u, c, x0, W and
// b, to any order (beyond the first through the registered reference).
std::vector<at::Tensor> channel_axes(const at::Tensor& x, const at::Tensor& u,
                                     const at::Tensor& c, const at::Tensor& x0,
                                     const at::Tensor& W, const at::Tensor& b,
                                     double scale, bool relu) {
  return ddl_gnn::ChannelAxes::apply(x, u, c, x0, W, b, scale, relu);
}
