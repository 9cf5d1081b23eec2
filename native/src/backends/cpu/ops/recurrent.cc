// RNN, GRU and LSTM on the CPU (float). Schemas and shapes: ops/nn_recurrent.cc.
//
// Per direction, the input projection of every time step is one GEMM up front (X * W^T, the part
// that does not depend on the recurrence); each step then adds H(t-1) * R^T (one small GEMM over
// the whole batch) and applies the gate equations of the ONNX spec element by element. Rows whose
// sequence has ended (sequence_lens) keep their state and write zeros to Y.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/gemm/sgemm.h"
#include "backends/cpu/ops/elementwise_util.h"

namespace kiln::cpu {
namespace {

enum class Cell { Rnn, Gru, Lstm };

// One of the activation functions the recurrent ops accept, with its alpha/beta.
struct Activation {
  enum class Kind { Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus };
  Kind kind = Kind::Tanh;
  float alpha = 0, beta = 0;

  float operator()(float x) const {
    switch (kind) {
      case Kind::Relu: return x > 0 ? x : 0;
      case Kind::Tanh: return std::tanh(x);
      case Kind::Sigmoid: return 1.f / (1.f + std::exp(-x));
      case Kind::Affine: return alpha * x + beta;
      case Kind::LeakyRelu: return x >= 0 ? x : alpha * x;
      case Kind::ThresholdedRelu: return x > alpha ? x : 0;
      case Kind::ScaledTanh: return alpha * std::tanh(beta * x);
      case Kind::HardSigmoid: return std::max(0.f, std::min(1.f, alpha * x + beta));
      case Kind::Elu: return x >= 0 ? x : alpha * (std::exp(x) - 1);
      case Kind::Softsign: return x / (1 + std::fabs(x));
      case Kind::Softplus: return std::log1p(std::exp(-std::fabs(x))) + std::max(x, 0.f);
    }
    return x;
  }
};

// Parses the activations attribute: alphas and betas are consumed in order by the functions that
// take them, defaulting to the matching ONNX operator's defaults.
std::vector<Activation> parseActivations(const Node& node, const std::vector<std::string>& defaults, int64_t dirs,
                                         const OpInfo& info) {
  std::vector<std::string> names;
  if (auto it = node.attrs.find("activations"); it != node.attrs.end()) names = it->second.strings;
  const size_t perDirection = defaults.size();
  if (names.empty()) {
    for (int64_t d = 0; d < dirs; d++) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() != perDirection * (size_t)dirs) {
    info.invalid("activations must list " + std::to_string(perDirection * (size_t)dirs) + " functions, got " +
                 std::to_string(names.size()));
  }
  const std::vector<float> alphas = node.getFloats("activation_alpha");
  const std::vector<float> betas = node.getFloats("activation_beta");
  size_t nextAlpha = 0, nextBeta = 0;
  auto alpha = [&](float fallback) { return nextAlpha < alphas.size() ? alphas[nextAlpha++] : fallback; };
  auto beta = [&](float fallback) { return nextBeta < betas.size() ? betas[nextBeta++] : fallback; };
  std::vector<Activation> out;
  for (const std::string& raw : names) {
    std::string name = raw;
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    Activation a;
    using K = Activation::Kind;
    if (name == "relu") a.kind = K::Relu;
    else if (name == "tanh") a.kind = K::Tanh;
    else if (name == "sigmoid") a.kind = K::Sigmoid;
    else if (name == "affine") { a.kind = K::Affine; a.alpha = alpha(1.f); a.beta = beta(0.f); }
    else if (name == "leakyrelu") { a.kind = K::LeakyRelu; a.alpha = alpha(0.01f); }
    else if (name == "thresholdedrelu") { a.kind = K::ThresholdedRelu; a.alpha = alpha(1.f); }
    else if (name == "scaledtanh") { a.kind = K::ScaledTanh; a.alpha = alpha(1.f); a.beta = beta(1.f); }
    else if (name == "hardsigmoid") { a.kind = K::HardSigmoid; a.alpha = alpha(0.2f); a.beta = beta(0.5f); }
    else if (name == "elu") { a.kind = K::Elu; a.alpha = alpha(1.f); }
    else if (name == "softsign") a.kind = K::Softsign;
    else if (name == "softplus") a.kind = K::Softplus;
    else info.invalid("unknown activation '" + raw + "'");
    out.push_back(a);
  }
  return out;
}

class RecurrentKernel final : public Kernel {
 public:
  RecurrentKernel(const KernelCreateInfo& info, Cell cell) : info_(info), cell_(cell) {
    const Node& node = info.node;
    const std::string direction = node.getString("direction", "forward");
    dirs_ = direction == "bidirectional" ? 2 : 1;
    reverseOnly_ = direction == "reverse";
    if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
      info_.invalid("direction must be forward, reverse or bidirectional, got '" + direction + "'");
    }
    layout_ = node.getInt("layout", 0);
    hiddenAttr_ = node.getInt("hidden_size", -1);
    hasClip_ = node.has("clip");
    clip_ = node.getFloat("clip", 0.f);
    if (hasClip_ && !(clip_ > 0)) info_.invalid("clip must be positive");
    inputForget_ = node.getInt("input_forget", 0) != 0;
    linearBeforeReset_ = node.getInt("linear_before_reset", 0) != 0;
    gates_ = cell == Cell::Lstm ? 4 : cell == Cell::Gru ? 3 : 1;
    const std::vector<std::string> defaults = cell == Cell::Lstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                              : cell == Cell::Gru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                                  : std::vector<std::string>{"Tanh"};
    perDirection_ = defaults.size();
    activations_ = parseActivations(node, defaults, dirs_, info_);
    for (size_t i = 0; i < 3; i++) {
      const DType t = inputType(info, i);
      if (t != DType::Undefined) info_.require(typeBit(DType::Float32), t);
    }
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    const Tensor& w = requireInput(ctx, info_, 1);
    const Tensor& r = requireInput(ctx, info_, 2);
    for (const Tensor* t : {&x, &w, &r}) {
      if (t->dtype != DType::Float32) info_.unsupported(t->dtype);
    }
    if (x.shape.size() != 3) info_.shape("X must have rank 3, got " + shapeToString(x.shape));
    const int64_t seq = x.shape[layout_ == 0 ? 0 : 1], batch = x.shape[layout_ == 0 ? 1 : 0], in = x.shape[2];
    if (r.shape.size() != 3) info_.shape("R must have rank 3, got " + shapeToString(r.shape));
    const int64_t H = hiddenAttr_ > 0 ? hiddenAttr_ : r.shape[2];
    const int64_t G = gates_, D = dirs_;
    expectShape(w, {D, G * H, in}, "W");
    expectShape(r, {D, G * H, H}, "R");
    const Tensor* b = optional(ctx, 3, DType::Float32, {D, 2 * G * H}, "B");
    const Tensor* lens = optional(ctx, 4, DType::Int32, {batch}, "sequence_lens");
    const Shape stateShape = layout_ == 0 ? Shape{D, batch, H} : Shape{batch, D, H};
    const Tensor* h0 = optional(ctx, 5, DType::Float32, stateShape, "initial_h");
    const Tensor* c0 = cell_ == Cell::Lstm ? optional(ctx, 6, DType::Float32, stateShape, "initial_c") : nullptr;
    const Tensor* peep = cell_ == Cell::Lstm ? optional(ctx, 7, DType::Float32, {D, 3 * H}, "P") : nullptr;
    std::vector<int64_t> seqLens((size_t)batch, seq);
    if (lens) {
      const int32_t* l = lens->ptr<int32_t>();
      for (int64_t i = 0; i < batch; i++) {
        if (l[i] < 0 || l[i] > seq) {
          info_.shape("sequence_lens[" + std::to_string(i) + "] = " + std::to_string(l[i]) + " is outside [0, " +
                      std::to_string(seq) + "]");
        }
        seqLens[(size_t)i] = l[i];
      }
    }

    Tensor* y = outputOrNull(ctx, 0, layout_ == 0 ? Shape{seq, D, batch, H} : Shape{batch, seq, D, H});
    Tensor* yh = outputOrNull(ctx, 1, stateShape);
    Tensor* yc = cell_ == Cell::Lstm ? outputOrNull(ctx, 2, stateShape) : nullptr;
    if (y && y->numel() > 0) std::fill(y->ptr<float>(), y->ptr<float>() + y->numel(), 0.f);

    ThreadPool* pool = &poolOf(ctx);
    const float* X = x.ptr<float>();
    // Element (t, n, i) of X in either layout.
    const int64_t xStrideT = layout_ == 0 ? batch * in : in, xStrideN = layout_ == 0 ? in : seq * in;
    auto stateAt = [&](int64_t d, int64_t n) { return layout_ == 0 ? (d * batch + n) * H : (n * D + d) * H; };
    auto yAt = [&](int64_t t, int64_t d, int64_t n) {
      return layout_ == 0 ? ((t * D + d) * batch + n) * H : ((n * seq + t) * D + d) * H;
    };

    std::vector<float> xw((size_t)(seq * batch * G * H));  // [t][n][G*H]
    std::vector<float> hr((size_t)(batch * G * H));        // H(t-1) * R^T
    std::vector<float> h((size_t)(batch * H)), c((size_t)(batch * H)), hNew((size_t)(batch * H));
    std::vector<float> gruReset((size_t)(batch * H));      // r (.) H(t-1) when linear_before_reset = 0
    for (int64_t d = 0; d < D; d++) {
      const bool reverse = reverseOnly_ || d == 1;
      const float* W = w.ptr<float>() + d * G * H * in;
      const float* R = r.ptr<float>() + d * G * H * H;
      const float* Wb = b ? b->ptr<float>() + d * 2 * G * H : nullptr;
      const float* Rb = b ? Wb + G * H : nullptr;
      const float* P = peep ? peep->ptr<float>() + d * 3 * H : nullptr;
      const Activation* act = activations_.data() + d * perDirection_;

      // X * W^T for every (t, n): rows of X in time-major order.
      for (int64_t t = 0; t < seq && batch > 0 && in > 0; t++) {
        GemmArgs g;
        g.M = batch;
        g.N = G * H;
        g.K = in;
        g.A = GemmOperand{X + t * xStrideT, xStrideN, 1, nullptr};
        g.B = GemmOperand::colMajor(W, in);  // W^T: element (k, j) = W[j * in + k]
        g.C = xw.data() + t * batch * G * H;
        g.ldc = G * H;
        sgemm(g, pool);
      }
      if (in == 0) std::fill(xw.begin(), xw.end(), 0.f);

      for (int64_t n = 0; n < batch; n++) {
        for (int64_t k = 0; k < H; k++) {
          h[(size_t)(n * H + k)] = h0 ? h0->ptr<float>()[stateAt(d, n) + k] : 0.f;
          c[(size_t)(n * H + k)] = c0 ? c0->ptr<float>()[stateAt(d, n) + k] : 0.f;
        }
      }
      for (int64_t step = 0; step < seq; step++) {
        // H(t-1) * R^T for the whole batch (rows past their sequence are computed and ignored).
        if (H > 0 && batch > 0) {
          GemmArgs g;
          g.M = batch;
          g.N = G * H;
          g.K = H;
          g.A = GemmOperand::rowMajor(h.data(), H);
          g.B = GemmOperand::colMajor(R, H);
          g.C = hr.data();
          g.ldc = G * H;
          sgemm(g, pool);
        }
        if (cell_ == Cell::Gru && !linearBeforeReset_) {
          // The candidate needs (r (.) H(t-1)) * Rh^T, so r comes first: gates z and r here.
          for (int64_t n = 0; n < batch; n++) {
            const int64_t t = reverse ? seqLens[(size_t)n] - 1 - step : step;
            if (t < 0 || step >= seqLens[(size_t)n]) continue;
            const float* xg = xw.data() + (t * batch + n) * G * H;
            const float* hg = hr.data() + n * G * H;
            for (int64_t k = 0; k < H; k++) {
              float rv = xg[H + k] + hg[H + k] + (Wb ? Wb[H + k] + Rb[H + k] : 0.f);
              rv = act[0](clip(rv));
              gruReset[(size_t)(n * H + k)] = rv * h[(size_t)(n * H + k)];
            }
          }
          // (r (.) H(t-1)) * Rh^T overwrites the h-gate columns of hr.
          if (H > 0 && batch > 0) {
            GemmArgs g;
            g.M = batch;
            g.N = H;
            g.K = H;
            g.A = GemmOperand::rowMajor(gruReset.data(), H);
            g.B = GemmOperand::colMajor(R + 2 * H * H, H);
            g.C = hr.data() + 2 * H;
            g.ldc = G * H;
            sgemm(g, pool);
          }
        }
        for (int64_t n = 0; n < batch; n++) {
          const bool active = step < seqLens[(size_t)n];
          const int64_t t = reverse ? seqLens[(size_t)n] - 1 - step : step;
          float* hn = hNew.data() + n * H;
          const float* hp = h.data() + n * H;
          float* cn = c.data() + n * H;
          if (!active) {
            std::copy(hp, hp + H, hn);
            continue;
          }
          const float* xg = xw.data() + (t * batch + n) * G * H;
          const float* hg = hr.data() + n * G * H;
          auto pre = [&](int64_t gate, int64_t k) {
            return xg[gate * H + k] + hg[gate * H + k] + (Wb ? Wb[gate * H + k] + Rb[gate * H + k] : 0.f);
          };
          for (int64_t k = 0; k < H; k++) {
            switch (cell_) {
              case Cell::Rnn: hn[k] = act[0](clip(pre(0, k))); break;
              case Cell::Gru: {
                const float z = act[0](clip(pre(0, k)));
                float cand;
                if (linearBeforeReset_) {
                  const float rv = act[0](clip(pre(1, k)));
                  const float rh = hg[2 * H + k] + (Rb ? Rb[2 * H + k] : 0.f);
                  cand = xg[2 * H + k] + (Wb ? Wb[2 * H + k] : 0.f) + rv * rh;
                } else {
                  cand = pre(2, k);  // hr's h-gate already holds (r (.) H(t-1)) * Rh^T
                }
                const float hh = act[1](clip(cand));
                hn[k] = (1 - z) * hh + z * hp[k];
                break;
              }
              case Cell::Lstm: {
                // Gate order in W, R and B: input, output, forget, cell; P: input, output, forget.
                const float cPrev = cn[k];
                float i = pre(0, k) + (P ? P[k] * cPrev : 0.f);
                i = act[0](clip(i));
                float f;
                if (inputForget_) {
                  f = 1 - i;
                } else {
                  f = act[0](clip(pre(2, k) + (P ? P[2 * H + k] * cPrev : 0.f)));
                }
                const float cc = act[1](clip(pre(3, k)));
                const float cNew = f * cPrev + i * cc;
                const float o = act[0](clip(pre(1, k) + (P ? P[H + k] * cNew : 0.f)));
                cn[k] = cNew;
                hn[k] = o * act[2](cNew);
                break;
              }
            }
          }
          if (y) std::copy(hn, hn + H, y->ptr<float>() + yAt(t, d, n));
        }
        h.swap(hNew);
      }
      for (int64_t n = 0; n < batch; n++) {
        if (yh) std::copy(h.begin() + n * H, h.begin() + (n + 1) * H, yh->ptr<float>() + stateAt(d, n));
        if (yc) std::copy(c.begin() + n * H, c.begin() + (n + 1) * H, yc->ptr<float>() + stateAt(d, n));
      }
    }
  }

  std::string name() const override {
    return std::string("recurrent.") + (cell_ == Cell::Lstm ? "lstm" : cell_ == Cell::Gru ? "gru" : "rnn") + "_sgemm";
  }

 private:
  float clip(float v) const { return hasClip_ ? std::max(-clip_, std::min(clip_, v)) : v; }

  void expectShape(const Tensor& t, const Shape& want, const char* what) const {
    if (t.shape != want) {
      info_.shape(std::string(what) + " must have shape " + shapeToString(want) + ", got " + shapeToString(t.shape));
    }
  }
  const Tensor* optional(const KernelContext& ctx, size_t i, DType type, const Shape& shape, const char* what) const {
    if (i >= ctx.inputs.size() || ctx.inputs[i] == nullptr) return nullptr;
    const Tensor* t = ctx.inputs[i];
    if (t->dtype != type) {
      info_.invalid(std::string(what) + " has type " + dtypeName(t->dtype) + ", expected " + dtypeName(type));
    }
    expectShape(*t, shape, what);
    return t;
  }
  static Tensor* outputOrNull(const KernelContext& ctx, size_t i, const Shape& shape) {
    if (i >= ctx.outputs.size() || ctx.outputs[i] == nullptr) return nullptr;
    Tensor* t = ctx.outputs[i];
    if (t->shape != shape) {
      fail(ErrorCode::Internal, "recurrent output " + std::to_string(i) + " was allocated as " + shapeToString(t->shape) +
                                    " but the kernel computes " + shapeToString(shape));
    }
    return t;
  }

  OpInfo info_;
  Cell cell_;
  int64_t dirs_ = 1, layout_ = 0, hiddenAttr_ = -1, gates_ = 1;
  size_t perDirection_ = 1;
  bool reverseOnly_ = false, hasClip_ = false, inputForget_ = false, linearBeforeReset_ = false;
  float clip_ = 0;
  std::vector<Activation> activations_;
};

template <Cell C>
std::unique_ptr<Kernel> make(const KernelCreateInfo& info) {
  return std::make_unique<RecurrentKernel>(info, C);
}

}  // namespace

KILN_REGISTER_KERNEL(RNN, (KernelDef{"cpu", "", "RNN", 1, make<Cell::Rnn>}));
KILN_REGISTER_KERNEL(GRU, (KernelDef{"cpu", "", "GRU", 1, make<Cell::Gru>}));
KILN_REGISTER_KERNEL(LSTM, (KernelDef{"cpu", "", "LSTM", 1, make<Cell::Lstm>}));

}  // namespace kiln::cpu
