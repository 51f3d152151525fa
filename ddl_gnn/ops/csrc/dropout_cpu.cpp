// Dropout masks from a counter-based hash (see ddl_gnn/ops/dropout.py).
//
// Word j of a mask drawn with seed s is splitmix64(s + (j + 1) * golden):
// its low 32 bits decide element 2j, its high 32 bits element 2j + 1.
// Element i is kept (value 1 / (1 - p)) where its 32 bits are at least
// floor(p * 2^32), else dropped (0). Every word depends on (s, j) alone,
// so the mask is the same whatever the thread count, and
// dropout_mask_reference in dropout.py computes the same bits in torch ops.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>
#include <cstdint>

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// out = x * mask over words [begin, end), the mask not stored: the forward
// of dropout, and with the gradient for x its backward (the same mask,
// regenerated from the seed); with x = 1 the mask itself. The arguments
// are taken by value, so that the compiler keeps them in registers and
// vectorises the loop (read through the capturing lambda's references it
// does not, about 20x slower).
template <typename scalar_t>
void apply_words(const scalar_t* __restrict__ x, scalar_t* __restrict__ out,
                 int64_t begin, int64_t end, uint32_t threshold,
                 scalar_t keep, uint64_t seed) {
  // x read unconditionally, the factor selected: a branch-free loop the
  // compiler vectorises (a select around the load it did not, 8x slower)
  for (int64_t j = begin; j < end; ++j) {
    const uint64_t z = splitmix64(seed + uint64_t(j + 1) * kGolden);
    out[2 * j] = x[2 * j] * (uint32_t(z) >= threshold ? keep : scalar_t(0));
    out[2 * j + 1] =
        x[2 * j + 1] * (uint32_t(z >> 32) >= threshold ? keep : scalar_t(0));
  }
}

template <typename scalar_t>
void apply_mask(const scalar_t* x, scalar_t* out, int64_t numel,
                uint32_t threshold, scalar_t keep, uint64_t seed) {
  const int64_t words = numel / 2;
  // grains of 64k words: a Cora-size state (173k floats) stays on one
  // thread, an arxiv-size one is split
  at::parallel_for(0, words, 1 << 16, [=](int64_t begin, int64_t end) {
    apply_words<scalar_t>(x, out, begin, end, threshold, keep, seed);
  });
  if (numel & 1) {
    const uint64_t z = splitmix64(seed + uint64_t(words + 1) * kGolden);
    out[numel - 1] =
        x[numel - 1] * (uint32_t(z) >= threshold ? keep : scalar_t(0));
  }
}

uint32_t threshold_of(double p) {
  const double t = std::floor(p * 4294967296.0);
  return t >= 4294967295.0 ? 4294967295u : uint32_t(t);
}

}  // namespace

// x (float32 / float64, contiguous, CPU) times the scaled keep-mask of
// (p, seed) (the header's hash), without storing the mask.
at::Tensor dropout_apply(const at::Tensor& x, double p, int64_t seed) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(),
              "dropout_apply: a contiguous CPU tensor");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "dropout_apply: p in [0, 1), got ", p);
  auto out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dropout_apply", [&] {
    apply_mask<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                         x.numel(), threshold_of(p),
                         scalar_t(1.0 / (1.0 - p)), uint64_t(seed));
  });
  return out;
}
