// The create_graph backward of the autograd functions written in C++
// (csrc/message_function.cpp, csrc/axes_function.cpp). Their closed-form
// backward uses values saved without history, so a backward that must
// itself be differentiable runs a Python function instead (the plain
// chain differentiated with a graph), registered under the C++
// function's name with set_graph_backward.
#pragma once

#include <torch/extension.h>

#include <string>
#include <vector>

void set_graph_backward(const std::string& name, py::object fn);

// The function registered under name (raises if there is none); call it
// holding the GIL.
py::object graph_backward(const std::string& name);

// name's function called with args: n gradients, undefined where it
// returned None.
template <typename... Args>
std::vector<at::Tensor> call_graph_backward(const std::string& name,
                                            size_t n, const Args&... args) {
  py::gil_scoped_acquire gil;
  auto got = graph_backward(name)(args...)
                 .template cast<std::vector<c10::optional<at::Tensor>>>();
  TORCH_CHECK(got.size() == n, name, ": its create_graph backward must "
              "return ", n, " gradients, got ", got.size());
  std::vector<at::Tensor> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = got[i].value_or(at::Tensor());
  return out;
}
