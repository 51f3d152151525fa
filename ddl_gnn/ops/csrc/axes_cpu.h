// The channel-axes kernels of csrc/axes_cpu.cpp, declared for the
// module's bindings (csrc/delta_cpu.cpp) and the autograd function over
// them (csrc/axes_function.cpp).
#pragma once

#include <torch/extension.h>

#include <vector>

at::Tensor axes_forward(const at::Tensor&, const at::Tensor&,
                        const at::Tensor&, bool);
std::vector<at::Tensor> axes_backward(const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&,
                                      double, bool);
