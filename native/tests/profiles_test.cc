#include "core/error.h"
#include "plan/profiles.h"
#include "test.h"

using namespace kiln;

namespace {

TensorInfo input(const std::string& name, std::vector<Dim> dims) {
  TensorInfo info;
  info.name = name;
  info.dtype = DType::Float32;
  info.shape.hasRank = true;
  info.shape.dims = std::move(dims);
  return info;
}

Dim k(int64_t v) { return Dim::known(v); }
Dim s(const std::string& name) { return Dim::sym(name); }

Profile range(const std::string& name, Shape min, Shape opt, Shape max) {
  Profile p;
  p.min[name] = std::move(min);
  p.opt[name] = std::move(opt);
  p.max[name] = std::move(max);
  return p;
}

std::vector<TensorInfo> imageModel() { return {input("x", {s("batch"), k(3), k(224), k(224)})}; }

}  // namespace

KILN_TEST(profiles, default_pins_dynamic_dims_to_one) {
  std::vector<TensorInfo> inputs = {input("x", {s("batch"), k(3), k(8)}), input("len", {k(1)})};
  std::vector<Profile> out = resolveProfiles(inputs, {});
  EXPECT_EQ(out.size(), (size_t)1);
  EXPECT_EQ(shapeToString(out[0].min.at("x")), std::string("[1,3,8]"));
  EXPECT_EQ(shapeToString(out[0].max.at("x")), std::string("[1,3,8]"));
  EXPECT_EQ(shapeToString(out[0].opt.at("len")), std::string("[1]"));
  // An input of unknown rank cannot be guessed.
  TensorInfo anything;
  anything.name = "blob";
  EXPECT_THROWS_WITH(resolveProfiles({anything}, {}), "input 'blob' has an unknown rank");
}

KILN_TEST(profiles, resolve_fills_static_inputs_and_keeps_ranges) {
  std::vector<TensorInfo> inputs = {input("x", {s("batch"), k(3), k(224), k(224)}), input("scale", {k(3)})};
  std::vector<Profile> out =
      resolveProfiles(inputs, {range("x", {1, 3, 224, 224}, {8, 3, 224, 224}, {32, 3, 224, 224})});
  EXPECT_EQ(shapeToString(out[0].opt.at("x")), std::string("[8,3,224,224]"));
  EXPECT_EQ(shapeToString(out[0].max.at("scale")), std::string("[3]"));
}

KILN_TEST(profiles, resolve_rejects_bad_profiles) {
  auto model = imageModel();
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("y", {1}, {1}, {1})}),
                     "profile 0 names 'y', which is not an input of the model (inputs: x)");
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("x", {1, 3, 224}, {1, 3, 224}, {1, 3, 224})}),
                     "profile 0: input 'x' has rank 3 [1,3,224] but the model's input has rank 4");
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("x", {8, 3, 224, 224}, {4, 3, 224, 224}, {32, 3, 224, 224})}),
                     "dim 0 needs 0 <= min <= opt <= max, got min 8, opt 4, max 32");
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("x", {1, 3, 224, 224}, {1, 3, 224, 224}, {1, 3, 256, 256})}),
                     "dim 2 is fixed to 224 by the model");
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("x", {1, 3, 224, 224}, {1, 3, 224, 224}, {1, 4, 224, 224})}),
                     "profile 0: input 'x' dim 1 is fixed to 3");
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("x", {-1, 3, 224, 224}, {1, 3, 224, 224}, {1, 3, 224, 224})}),
                     "min -1");
  // The second profile forgets the dynamic input.
  Profile other;
  EXPECT_THROWS_WITH(resolveProfiles(model, {range("x", {1, 3, 224, 224}, {1, 3, 224, 224}, {2, 3, 224, 224}), other}),
                     "profile 1 does not cover dynamic input 'x'");
  Profile half = range("x", {1, 3, 224, 224}, {1, 3, 224, 224}, {2, 3, 224, 224});
  half.max.clear();
  EXPECT_THROWS_WITH(resolveProfiles(model, {half}), "has a min shape but no max shape");
  EXPECT_THROWS_WITH(
      resolveProfiles(model, {range("x", {1, 3, 224, 224}, {1, 3, 224, 224}, {int64_t(1) << 39, 3, 224, 224})}),
      "is too large");
}

KILN_TEST(profiles, shared_symbols_must_agree) {
  std::vector<TensorInfo> inputs = {input("ids", {s("batch"), s("seq")}), input("mask", {s("batch"), s("seq")})};
  Profile ok = range("ids", {1, 1}, {1, 128}, {4, 512});
  ok.min["mask"] = {1, 1};
  ok.opt["mask"] = {1, 128};
  ok.max["mask"] = {4, 512};
  EXPECT_EQ(resolveProfiles(inputs, {ok}).size(), (size_t)1);
  Profile bad = ok;
  bad.max["mask"] = {4, 256};
  EXPECT_THROWS_WITH(resolveProfiles(inputs, {bad}),
                     "input 'mask' dim 1 is 'seq' with min/opt/max 1/128/256 but ids dim 1");
}

KILN_TEST(profiles, select_returns_first_fitting_profile) {
  std::vector<Profile> profiles = {range("x", {1, 3, 224, 224}, {8, 3, 224, 224}, {32, 3, 224, 224}),
                                   range("x", {1, 3, 224, 224}, {64, 3, 224, 224}, {128, 3, 224, 224})};
  EXPECT_EQ(selectProfile(profiles, {{"x", {1, 3, 224, 224}}}), 0);
  EXPECT_EQ(selectProfile(profiles, {{"x", {32, 3, 224, 224}}}), 0);
  EXPECT_EQ(selectProfile(profiles, {{"x", {64, 3, 224, 224}}}), 1);
  // Inputs no profile mentions are not this function's concern.
  EXPECT_EQ(selectProfile(profiles, {{"x", {2, 3, 224, 224}}, {"other", {9}}}), 0);
}

KILN_TEST(profiles, select_names_input_shape_and_every_range) {
  std::vector<Profile> one = {range("x", {1, 3, 224, 224}, {8, 3, 224, 224}, {32, 3, 224, 224})};
  EXPECT_THROWS_WITH(selectProfile(one, {{"x", {64, 3, 224, 224}}}),
                     "input 'x' has shape [64,3,224,224] but profile 0 allows [1..32,3,224,224]");
  std::vector<Profile> two = {one[0], range("x", {1, 3, 224, 224}, {1, 3, 224, 224}, {48, 3, 224, 224})};
  EXPECT_THROWS_WITH(selectProfile(two, {{"x", {64, 3, 224, 224}}}),
                     "input 'x' has shape [64,3,224,224] but profile 0 allows [1..32,3,224,224], "
                     "profile 1 allows [1..48,3,224,224]");
  EXPECT_THROWS_WITH(selectProfile(one, {{"x", {3, 224, 224}}}), "has shape [3,224,224] but profile 0 allows");
  EXPECT_THROWS_WITH(selectProfile(one, {{"x", {1, 3, 225, 224}}}), "[1,3,225,224] but profile 0 allows [1..32,3,224,224]");
  EXPECT_THROWS_WITH(selectProfile(one, {}), "missing input 'x'");
  EXPECT_THROWS_WITH(selectProfile({}, {{"x", {1}}}), "no optimization profile");
  try {
    selectProfile(one, {{"x", {64, 3, 224, 224}}});
  } catch (const KilnError& e) {
    EXPECT_TRUE(e.code() == ErrorCode::ShapeMismatch);
  }
}

KILN_TEST(profiles, select_reports_different_inputs_per_profile) {
  Profile a = range("ids", {1, 1}, {1, 8}, {1, 16});
  a.min["mask"] = {1, 1};
  a.opt["mask"] = {1, 8};
  a.max["mask"] = {1, 16};
  Profile b = range("ids", {2, 1}, {2, 8}, {4, 64});
  b.min["mask"] = {2, 1};
  b.opt["mask"] = {2, 8};
  b.max["mask"] = {4, 64};
  EXPECT_EQ(selectProfile({a, b}, {{"ids", {1, 4}}, {"mask", {1, 4}}}), 0);
  EXPECT_EQ(selectProfile({a, b}, {{"ids", {3, 40}}, {"mask", {3, 40}}}), 1);
  EXPECT_THROWS_WITH(selectProfile({a, b}, {{"ids", {1, 40}}, {"mask", {1, 40}}}),
                     "input 'ids' has shape [1,40] but profile 0 allows [1,1..16], profile 1 allows [2..4,1..64]");
  EXPECT_THROWS_WITH(selectProfile({a, b}, {{"ids", {2, 4}}, {"mask", {1, 4}}}),
                     "input 'ids' has shape [2,4] but profile 0 allows [1,1..16]; input 'mask' has shape [1,4] "
                     "but profile 1 allows [2..4,1..64]");
}

KILN_TEST(profiles, parse_and_format_round_trip) {
  Profile p = parseProfile("input:1x3x224x224,8x3x224x224,32x3x224x224");
  EXPECT_EQ(shapeToString(p.min.at("input")), std::string("[1,3,224,224]"));
  EXPECT_EQ(shapeToString(p.opt.at("input")), std::string("[8,3,224,224]"));
  EXPECT_EQ(shapeToString(p.max.at("input")), std::string("[32,3,224,224]"));
  Profile multi = parseProfile(" ids:1x1,1x128,4x512 ; mask:1x1,1x128,4x512; x:0:2x3 ;step:scalar");
  EXPECT_EQ(shapeToString(multi.max.at("mask")), std::string("[4,512]"));
  EXPECT_EQ(shapeToString(multi.opt.at("x:0")), std::string("[2,3]"));  // name up to the last ':'
  EXPECT_EQ(multi.max.at("step").size(), (size_t)0);
  EXPECT_EQ(formatProfile(multi), std::string("ids:1x1,1x128,4x512;mask:1x1,1x128,4x512;step:scalar;x:0:2x3"));
  Profile again = parseProfile(formatProfile(multi));
  EXPECT_EQ(formatProfile(again), formatProfile(multi));
}

KILN_TEST(profiles, parse_rejects_garbage) {
  EXPECT_THROWS_WITH(parseProfile(""), "empty profile spec");
  EXPECT_THROWS_WITH(parseProfile("1x3x224x224"), "should look like name:min,opt,max");
  EXPECT_THROWS_WITH(parseProfile(":1x3"), "should look like name:min,opt,max");
  EXPECT_THROWS_WITH(parseProfile("x:1x3,2x3"), "one shape or three");
  EXPECT_THROWS_WITH(parseProfile("x:1x-3"), "bad dimension '-3'");
  EXPECT_THROWS_WITH(parseProfile("x:1xx3"), "bad dimension ''");
  EXPECT_THROWS_WITH(parseProfile("x:1x3,,1x3"), "empty shape");
  EXPECT_THROWS_WITH(parseProfile("x:99999999999999999999"), "bad dimension");
  EXPECT_THROWS_WITH(parseProfile("x:9999999999999"), "too large");
  EXPECT_THROWS_WITH(parseProfile("x:1;x:2"), "names input 'x' twice");
}
