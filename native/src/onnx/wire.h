// A strict reader for the protobuf wire format, the encoding of ONNX files. It never reads outside
// its byte range: every varint is at most 10 bytes, every length-delimited field is checked against
// the bytes that remain, nesting is bounded, and any violation throws KilnError(InvalidModel) with
// the byte offset and the message being read ("truncated varint at byte 812 in NodeProto").
//
// Usage:
//   WireReader r(data, size, "ModelProto");
//   while (r.next()) {
//     switch (r.field()) {
//       case 1: irVersion = r.int64(); break;
//       case 7: parseGraph(r.message("GraphProto")); break;
//       default: r.skip();
//     }
//   }
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace kiln {

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, Len = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5 };

class WireReader {
 public:
  // Nested messages deeper than this are rejected (a hostile file could otherwise recurse the
  // parser off the stack). ONNX needs about 4 levels per subgraph nesting.
  static constexpr int kMaxDepth = 160;

  // `base` is the absolute offset of data[0] in the file, for error messages.
  WireReader(const uint8_t* data, size_t size, const char* what, int depth = 0, size_t base = 0)
      : data_(data), size_(size), what_(what), depth_(depth), base_(base) {
    if (depth_ > kMaxDepth) fail("messages nested more than " + std::to_string(kMaxDepth) + " deep");
  }

  // Reads the next field's tag; false at the end of the message. An EndGroup tag outside a group is
  // malformed (groups are consumed whole by skip()).
  bool next() {
    if (pos_ >= size_) return false;
    fieldStart_ = pos_;
    uint64_t tag = readVarint();
    uint64_t fieldNumber = tag >> 3;
    uint8_t type = static_cast<uint8_t>(tag & 7);
    if (fieldNumber == 0 || fieldNumber > 0x1fffffff) fail("invalid field number " + std::to_string(fieldNumber));
    if (type > 5) fail("invalid wire type " + std::to_string(type) + " for field " + std::to_string(fieldNumber));
    field_ = static_cast<uint32_t>(fieldNumber);
    type_ = static_cast<WireType>(type);
    if (type_ == WireType::EndGroup) fail("unexpected end-group tag for field " + std::to_string(field_));
    return true;
  }

  uint32_t field() const { return field_; }
  WireType type() const { return type_; }
  size_t offset() const { return base_ + pos_; }
  const char* what() const { return what_; }
  int depth() const { return depth_; }

  // ---- scalars (each checks the wire type matches) ----
  uint64_t varint() {
    expect(WireType::Varint, "varint");
    return readVarint();
  }
  int64_t int64() { return static_cast<int64_t>(varint()); }
  // int32/enum fields are sign-extended to 64 bits on the wire; truncation is what protobuf does.
  int32_t int32() { return static_cast<int32_t>(static_cast<uint64_t>(varint())); }
  bool boolean() { return varint() != 0; }
  uint32_t fixed32() {
    expect(WireType::Fixed32, "fixed32");
    return readFixed32();
  }
  uint64_t fixed64() {
    expect(WireType::Fixed64, "fixed64");
    return readFixed64();
  }
  float float32() {
    uint32_t bits = fixed32();
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  double float64() {
    uint64_t bits = fixed64();
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }

  // ---- length-delimited ----
  std::string_view bytes() {
    expect(WireType::Len, "length-delimited");
    size_t n = readLength();
    std::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string string() { return std::string(bytes()); }
  // A reader over the embedded message in this length-delimited field, one level deeper.
  WireReader message(const char* what) {
    expect(WireType::Len, "length-delimited");
    size_t n = readLength();
    size_t start = pos_;
    pos_ += n;
    return WireReader(data_ + start, n, what, depth_ + 1, base_ + start);
  }

  // ---- repeated scalars: packed (one Len field) or unpacked (one field per element) ----
  void appendInt64s(std::vector<int64_t>& out) {
    if (type_ == WireType::Len) {
      WireReader packed = message(what_);
      while (packed.pos_ < packed.size_) out.push_back(static_cast<int64_t>(packed.readVarint()));
    } else {
      out.push_back(int64());
    }
  }
  // int32 on the wire (sign-extended varints) read into int32_t.
  void appendInt32s(std::vector<int32_t>& out) {
    if (type_ == WireType::Len) {
      WireReader packed = message(what_);
      while (packed.pos_ < packed.size_) out.push_back(static_cast<int32_t>(packed.readVarint()));
    } else {
      out.push_back(int32());
    }
  }
  void appendUint64s(std::vector<uint64_t>& out) {
    if (type_ == WireType::Len) {
      WireReader packed = message(what_);
      while (packed.pos_ < packed.size_) out.push_back(packed.readVarint());
    } else {
      out.push_back(varint());
    }
  }
  void appendFloats(std::vector<float>& out) {
    if (type_ == WireType::Len) {
      std::string_view b = bytes();
      if (b.size() % 4 != 0) fail("packed float field " + std::to_string(field_) + " is not a multiple of 4 bytes");
      size_t n = b.size() / 4, old = out.size();
      out.resize(old + n);
      if (n) std::memcpy(out.data() + old, b.data(), b.size());
    } else {
      out.push_back(float32());
    }
  }
  void appendDoubles(std::vector<double>& out) {
    if (type_ == WireType::Len) {
      std::string_view b = bytes();
      if (b.size() % 8 != 0) fail("packed double field " + std::to_string(field_) + " is not a multiple of 8 bytes");
      size_t n = b.size() / 8, old = out.size();
      out.resize(old + n);
      if (n) std::memcpy(out.data() + old, b.data(), b.size());
    } else {
      out.push_back(float64());
    }
  }

  // Skips the current field whatever its wire type (groups included, with their nesting bounded).
  void skip() { skipField(field_, type_, depth_); }

  [[noreturn]] void fail(const std::string& msg) const {
    ::kiln::fail(ErrorCode::InvalidModel, "malformed ONNX: " + msg + " at byte " + std::to_string(base_ + fieldStart_) +
                                              " in " + what_);
  }

 private:
  void expect(WireType t, const char* name) {
    if (type_ != t) {
      fail("field " + std::to_string(field_) + " has wire type " + std::to_string(static_cast<int>(type_)) +
           ", expected " + name);
    }
  }

  uint64_t readVarint() {
    uint64_t result = 0;
    for (int i = 0; i < 10; i++) {
      if (pos_ >= size_) fail("truncated varint");
      uint8_t b = data_[pos_++];
      // The 10th byte may only carry the 64th bit.
      if (i == 9 && b > 1) fail("varint overflows 64 bits");
      result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return result;
    }
    fail("varint longer than 10 bytes");
  }

  size_t readLength() {
    uint64_t n = readVarint();
    if (n > size_ - pos_) {
      fail("field " + std::to_string(field_) + " length " + std::to_string(n) + " exceeds the " +
           std::to_string(size_ - pos_) + " remaining bytes");
    }
    return static_cast<size_t>(n);
  }

  uint32_t readFixed32() {
    if (size_ - pos_ < 4) fail("truncated fixed32");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= static_cast<uint32_t>(data_[pos_ + i]) << (8 * i);  // little-endian
    pos_ += 4;
    return v;
  }

  uint64_t readFixed64() {
    if (size_ - pos_ < 8) fail("truncated fixed64");
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }

  void skipField(uint32_t fieldNumber, WireType t, int depth) {
    switch (t) {
      case WireType::Varint: readVarint(); return;
      case WireType::Fixed64: readFixed64(); return;
      case WireType::Fixed32: readFixed32(); return;
      case WireType::Len: pos_ += readLength(); return;
      case WireType::StartGroup: {
        if (depth + 1 > kMaxDepth) fail("groups nested more than " + std::to_string(kMaxDepth) + " deep");
        // Skip fields until the matching end-group tag.
        for (;;) {
          if (pos_ >= size_) fail("unterminated group for field " + std::to_string(fieldNumber));
          uint64_t tag = readVarint();
          uint64_t f = tag >> 3;
          uint8_t type = static_cast<uint8_t>(tag & 7);
          if (f == 0 || f > 0x1fffffff || type > 5) fail("invalid tag inside group");
          if (static_cast<WireType>(type) == WireType::EndGroup) {
            if (f != fieldNumber) fail("mismatched end-group tag");
            return;
          }
          skipField(static_cast<uint32_t>(f), static_cast<WireType>(type), depth + 1);
        }
      }
      case WireType::EndGroup: fail("unexpected end-group tag");
    }
  }

  const uint8_t* data_;
  size_t size_;
  const char* what_;
  int depth_;
  size_t base_;
  size_t pos_ = 0;
  size_t fieldStart_ = 0;
  uint32_t field_ = 0;
  WireType type_ = WireType::Varint;
};

}  // namespace kiln
