// Optimization profiles (runtime/api.h: Profile): the min/opt/max shapes a build supports for each
// input. The builder validates and completes them once; every run then picks the first profile its
// input shapes fit, and kernels, tactics and the memory plan are sized for that profile's max.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "graph/ir.h"
#include "runtime/api.h"

namespace kiln {

// Validates `profiles` against the model's inputs and returns them completed:
//  - every name must be a model input; every dynamic input (some dim not known, or unknown rank)
//    must appear in every profile with min, opt and max; static inputs may be left out and are
//    filled in with their fixed shape;
//  - ranks match the model's, every dim satisfies 0 <= min <= opt <= max, and a dim the model fixes
//    has min == opt == max == that size;
//  - a symbol shared by several dims ("batch" in two inputs) gets the same min/opt/max everywhere,
//    because the engine assumes those sizes are equal at run time.
// With no profiles given, the result is a single profile in which every dynamic dim is 1 for min,
// opt and max (the model's static shapes, batch 1): a model with dynamic dims but no profile then
// builds and runs at size 1 only, and a caller wanting more must say so. An input of unknown rank
// cannot be defaulted and needs an explicit profile.
// Throws KilnError(InvalidArgument) naming the profile index, the input and the offending dims.
std::vector<Profile> resolveProfiles(const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles);
// The same over a graph's real inputs (graph.inputs).
std::vector<Profile> resolveProfiles(const Graph& graph, const std::vector<Profile>& profiles);

// Index of the first profile that every given input shape fits (min <= dim <= max, rank equal).
// Inputs a profile does not mention are not checked here. Throws KilnError(ShapeMismatch) when none
// fits, naming each input that failed and what each profile allows:
//   "input 'x' has shape [64,3,224,224] but profile 0 allows [1..32,3,224,224]"
// and KilnError(InvalidArgument) when `profiles` is empty or an input a profile needs is missing.
int selectProfile(const std::vector<Profile>& profiles,
                  const std::vector<std::pair<std::string, Shape>>& inputShapes);

// Parses one profile from the CLI/TypeScript spelling. Inputs are separated by ';', each is
// "name:min,opt,max" with dims joined by 'x', or "name:shape" for a fixed shape (min = opt = max):
//   "input:1x3x224x224,8x3x224x224,32x3x224x224"
//   "ids:1x1,1x128,4x512;mask:1x1,1x128,4x512"
// The name is everything before the last ':' (TensorFlow exports name inputs "x:0"). A rank-0
// input is written with the word "scalar". Throws KilnError(InvalidArgument) quoting the bad part.
Profile parseProfile(const std::string& spec);
// The inverse of parseProfile (inputs in name order), for build reports and engine descriptions.
std::string formatProfile(const Profile& profile);
// "[1..32,3,224,224]": each dim as "min..max", or one number when min == max.
std::string formatShapeRange(const Shape& min, const Shape& max);

}  // namespace kiln
