// The registry of csrc/graph_backward.h.
#include "graph_backward.h"

#include <unordered_map>

namespace {

// Never destroyed: Python objects must not be released after the
// interpreter has shut down.
auto* registry = new std::unordered_map<std::string, py::object>();

}  // namespace

void set_graph_backward(const std::string& name, py::object fn) {
  (*registry)[name] = std::move(fn);
}

py::object graph_backward(const std::string& name) {
  auto it = registry->find(name);
  TORCH_CHECK(it != registry->end(), name, ": no create_graph backward "
              "registered (ddl_gnn.ops.cpu_kernels.cpp_function registers "
              "it)");
  return it->second;
}
