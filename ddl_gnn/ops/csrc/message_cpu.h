// The anchored-message kernels of csrc/message_cpu.cpp, declared for the
// module's bindings (csrc/delta_cpu.cpp) and the autograd function over
// them (csrc/message_function.cpp).
#pragma once

#include <torch/extension.h>

#include <vector>

std::vector<at::Tensor> message_forward(
    const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
    const c10::optional<at::Tensor>&, double, double, double, bool,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&);
std::vector<at::Tensor> message_backward(
    const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
    double, double, double, std::vector<bool>,
    const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
    const c10::optional<at::Tensor>&);
bool message_gate_in_rows(const at::Tensor&, int64_t);
