// tests/fuzz/fuzz_input.h: reads typed values off a fuzzer's byte string.
// Reading past the end yields zeros, so every input is a valid program.
#ifndef L4RE_MA_TESTS_FUZZ_FUZZ_INPUT_H_
#define L4RE_MA_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace l4re_ma::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }

  template <typename T>
  T Take() {
    T value{};
    const size_t n = pos_ < size_ ? (size_ - pos_ < sizeof(T) ? size_ - pos_ : sizeof(T)) : 0;
    if (n > 0) std::memcpy(&value, data_ + pos_, n);
    pos_ += sizeof(T);
    return value;
  }
  uint8_t Byte() { return Take<uint8_t>(); }
  // A value in [0, n). REQUIRES: n > 0.
  uint64_t Below(uint64_t n) { return Take<uint32_t>() % n; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace l4re_ma::fuzz

#endif  // L4RE_MA_TESTS_FUZZ_FUZZ_INPUT_H_
