// Owners of the bytes a model or a session works on: a read-only file mapping, and
// 64-byte-aligned heap buffers (model copies and activation arenas).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace intinfer {

class Bytes {
 public:
  virtual ~Bytes() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
};

class MappedFile : public Bytes {
 public:
  explicit MappedFile(const std::string& path);  // throws ModelError
  ~MappedFile() override;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const override { return data_; }
  size_t size() const override { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Buffers of kMapBytes or more are mapped from the OS directly, not taken from malloc: a session
// that grows its arena through thousands of sizes would leave every old arena in the malloc heap
// (freed but resident; 1 GB after batch sizes 1..2000 of a model whose largest arena is 1 MB),
// while an unmapped one is returned at once.
class AlignedBuffer : public Bytes {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kMapBytes = size_t{64} << 10;
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size) { resize(size); }
  ~AlignedBuffer() override;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  // Grows (never shrinks) without keeping the old contents.
  void resize(size_t size);
  uint8_t* mutable_data() { return data_; }
  const uint8_t* data() const override { return data_; }
  size_t size() const override { return size_; }

 private:
  void release();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes mapped, 0 when data_ comes from malloc
};

}  // namespace intinfer
