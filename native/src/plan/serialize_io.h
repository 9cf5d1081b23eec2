// Little-endian byte writer and a bounds-checked reader for the engine format (plan/serialize.h).
// Every read checks the remaining length first; a failure is KilnError(EngineMismatch) that says
// what was being read and where, so a corrupt engine is a clear error and never a crash.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace kiln {

class ByteWriter {
 public:
  std::vector<uint8_t>& bytes() { return bytes_; }
  size_t size() const { return bytes_.size(); }

  void u8(uint8_t v) { bytes_.push_back(v); }
  void u32(uint32_t v) { raw(&v, 4); }
  void i32(int32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void i64(int64_t v) { raw(&v, 8); }
  void f32(float v) { raw(&v, 4); }
  void f64(double v) { raw(&v, 8); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  void zeros(size_t n) { bytes_.insert(bytes_.end(), n, 0); }
  // Overwrites 8 bytes at `at` (for sizes and checksums known only after writing what follows).
  void patchU64(size_t at, uint64_t v) { std::memcpy(bytes_.data() + at, &v, 8); }

 private:
  std::vector<uint8_t> bytes_;
};

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string what)
      : data_(data), size_(size), what_(std::move(what)) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  uint8_t u8(const char* field) { return load<uint8_t>(field); }
  uint32_t u32(const char* field) { return load<uint32_t>(field); }
  int32_t i32(const char* field) { return load<int32_t>(field); }
  uint64_t u64(const char* field) { return load<uint64_t>(field); }
  int64_t i64(const char* field) { return load<int64_t>(field); }
  float f32(const char* field) { return load<float>(field); }
  double f64(const char* field) { return load<double>(field); }
  std::string str(const char* field) {
    uint32_t n = u32(field);
    need(n, field);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  // A count of items that each take at least `minItemBytes` in the stream: rejecting counts the
  // remaining bytes cannot hold keeps a hostile count from allocating gigabytes up front.
  uint32_t count(const char* field, size_t minItemBytes) {
    uint32_t n = u32(field);
    if (minItemBytes > 0 && static_cast<uint64_t>(n) * minItemBytes > remaining())
      fail(field, "count " + std::to_string(n) + " exceeds the remaining " + std::to_string(remaining()) + " bytes");
    return n;
  }
  const uint8_t* skip(size_t n, const char* field) {
    need(n, field);
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  [[noreturn]] void fail(const char* field, const std::string& why) const {
    ::kiln::fail(ErrorCode::EngineMismatch, "corrupt engine: " + what_ + " " + field + " at byte " +
                                                std::to_string(pos_) + ": " + why);
  }

 private:
  void need(size_t n, const char* field) {
    if (n > remaining()) fail(field, "truncated (need " + std::to_string(n) + " bytes, " +
                                         std::to_string(remaining()) + " left)");
  }
  template <class T>
  T load(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace kiln
