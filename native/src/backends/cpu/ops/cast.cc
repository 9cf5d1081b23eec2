// CPU kernels of BitCast, and of Cast and CastLike between every engine dtype, strings included. Float to integer
// conversions saturate (NaN becomes 0) instead of being undefined; integer to integer conversions
// wrap like numpy's astype; double to float16/bfloat16 rounds once, correctly. Schemas: ops/cast.cc.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include "backends/cpu/ops/elementwise_util.h"
#include "backends/cpu/vec_math.h"

namespace kiln::cpu {
namespace {

// double -> float with round-to-odd, so that a second rounding to a narrower format (half,
// bfloat16) gives the correctly rounded result of the double.
float roundToOdd(double d) {
  float f = static_cast<float>(d);
  if (static_cast<double>(f) == d || std::isnan(d) || std::isinf(f)) return f;
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 1) == 0) {
    // f is the nearest float with an even mantissa; the neighbour on d's side has an odd one.
    bool towardLarger = (static_cast<double>(f) < d) == (f >= 0);
    bits = towardLarger ? bits + 1 : bits - 1;
    std::memcpy(&f, &bits, 4);
  }
  return f;
}

// Parses a number the way numpy's float()/int() accept it ("1.5", "-inf", "NaN", "1e3").
double parseNumber(const std::string& s, const OpInfo& info) {
  const char* begin = s.c_str();
  char* end = nullptr;
  double v = std::strtod(begin, &end);
  while (end && *end == ' ') end++;
  if (end == begin || (end && *end != '\0')) info.invalid("cannot convert string '" + s + "' to a number");
  return v;
}

std::string formatNumber(double v, bool isDouble) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "INF" : "-INF";
  char buf[64];
  // Enough digits to round-trip the source type.
  std::snprintf(buf, sizeof(buf), isDouble ? "%.17g" : "%.9g", v);
  return buf;
}

// One element of S converted to D.
template <class S, class D>
D convert(const S& s, const OpInfo& info) {
  if constexpr (std::is_same_v<D, std::string>) {
    if constexpr (std::is_same_v<S, std::string>) {
      return s;
    } else if constexpr (std::is_same_v<S, boolean>) {
      return s.v ? "1" : "0";
    } else if constexpr (std::is_integral_v<S>) {
      return std::to_string(s);
    } else {
      return formatNumber(static_cast<double>(Num<S>::load(s)), std::is_same_v<S, double>);
    }
  } else if constexpr (std::is_same_v<S, std::string>) {
    if constexpr (std::is_same_v<D, boolean>) {
      bool v = s == "True" || s == "true" || (s != "False" && s != "false" && parseNumber(s, info) != 0);
      return Num<D>::store(v);
    } else if constexpr (std::is_integral_v<D>) {
      // Integers parse exactly (a double would lose int64 precision above 2^53).
      const char* begin = s.c_str();
      char* end = nullptr;
      errno = 0;
      if constexpr (std::is_signed_v<D>) {
        long long v = std::strtoll(begin, &end, 10);
        if (end != begin && *end == '\0' && errno == 0) return static_cast<D>(v);
      } else {
        unsigned long long v = std::strtoull(begin, &end, 10);
        if (end != begin && *end == '\0' && errno == 0 && s.find('-') == std::string::npos) return static_cast<D>(v);
      }
      return saturateCast<D>(parseNumber(s, info));
    } else {
      return convert<double, D>(parseNumber(s, info), info);
    }
  } else {
    using CS = typename Num<S>::C;
    using CD = typename Num<D>::C;
    CS v = Num<S>::load(s);
    if constexpr (std::is_same_v<CD, bool>) {
      return Num<D>::store(v != 0);
    } else if constexpr (std::is_same_v<S, double> && (std::is_same_v<D, f16> || std::is_same_v<D, bf16>)) {
      return Num<D>::store(roundToOdd(v));
    } else if constexpr (std::is_floating_point_v<CS> && std::is_integral_v<CD>) {
      return Num<D>::store(saturateCast<CD>(static_cast<double>(v)));
    } else {
      return Num<D>::store(static_cast<CD>(v));
    }
  }
}

class CastKernel final : public Kernel {
 public:
  explicit CastKernel(const KernelCreateInfo& info) : info_(info) {
    if (inputType(info, 0) != DType::Undefined) info_.require(kAll, inputType(info, 0), "input");
    if (outputType(info, 0) != DType::Undefined) info_.require(kAll, outputType(info, 0), "output");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    const int64_t n = x.numel();
    if (n == 0) return;
    if (x.dtype == y.dtype) {
      copySame(x, y, n);
      return;
    }
    // The two conversions that dominate real models get their vectorized paths.
    if (x.dtype == DType::Float16 && y.dtype == DType::Float32) {
      parallel(ctx, n, [&](int64_t b, int64_t e) { halfToFloatArray(x.ptr<uint16_t>() + b, y.ptr<float>() + b, e - b); });
      return;
    }
    if (x.dtype == DType::Float32 && y.dtype == DType::Float16) {
      parallel(ctx, n, [&](int64_t b, int64_t e) { floatToHalfArray(x.ptr<float>() + b, y.ptr<uint16_t>() + b, e - b); });
      return;
    }
    dispatch<kAll>(x.dtype, info_, [&](auto ts) {
      using S = typename decltype(ts)::type;
      dispatch<kAll>(y.dtype, info_, [&](auto td) {
        using D = typename decltype(td)::type;
        const S* in = x.ptr<S>();
        D* out = y.ptr<D>();
        parallel(ctx, n, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; i++) out[i] = convert<S, D>(in[i], info_);
        });
      });
    });
  }
  std::string name() const override { return "cast." + info_.op; }

 private:
  template <class F>
  void parallel(KernelContext& ctx, int64_t n, const F& f) const {
    if (n <= kGrain) {
      f(0, n);
    } else {
      poolOf(ctx).parallelFor(n, kGrain, f);
    }
  }
  void copySame(const Tensor& x, Tensor& y, int64_t n) const {
    if (x.data == y.data) return;
    if (x.dtype == DType::String) {
      for (int64_t i = 0; i < n; i++) y.ptr<std::string>()[i] = x.ptr<std::string>()[i];
    } else {
      std::memcpy(y.data, x.data, x.byteSize());
    }
  }

  OpInfo info_;
};

// BitCast: the element bytes unchanged under another type of the same size.
class BitCastKernel final : public Kernel {
 public:
  explicit BitCastKernel(const KernelCreateInfo& info) : info_(info) {}
  void run(KernelContext& ctx) const override {
    const Tensor& x = requireInput(ctx, info_, 0);
    Tensor& y = requireOutput(ctx, info_, 0, x.shape);
    if (x.dtype == DType::String || y.dtype == DType::String || dtypeSize(x.dtype) != dtypeSize(y.dtype)) {
      info_.unsupported(y.dtype, std::string("a bit cast from ") + dtypeName(x.dtype));
    }
    if (x.data != y.data && x.byteSize() > 0) std::memcpy(y.data, x.data, x.byteSize());
  }
  std::string name() const override { return "cast.BitCast"; }

 private:
  OpInfo info_;
};

std::unique_ptr<Kernel> makeBitCast(const KernelCreateInfo& info) { return std::make_unique<BitCastKernel>(info); }

std::unique_ptr<Kernel> makeCast(const KernelCreateInfo& info) { return std::make_unique<CastKernel>(info); }

}  // namespace

KILN_REGISTER_KERNEL(Cast, (KernelDef{"cpu", "", "Cast", 1, makeCast}));
KILN_REGISTER_KERNEL(BitCast, (KernelDef{"cpu", "", "BitCast", 26, makeBitCast}));
KILN_REGISTER_KERNEL(CastLike, (KernelDef{"cpu", "", "CastLike", 15, makeCast}));

}  // namespace kiln::cpu
