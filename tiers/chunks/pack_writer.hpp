// Writes one pack: chunk records appended in memory and written out in
// large blocks, several at a time, through a port::io_queue, while the
// next blocks are filled (two staging buffers); finish() makes the pack
// durable, publishes it under its final name, then writes its index (not
// synced: rebuildable).
#pragma once

#include "port/uring.hpp"
#include "tiers/chunks/file_ops.hpp"
#include "tiers/chunks/fingerprint.hpp"
#include "tiers/chunks/format.hpp"

#include <larder/status.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ZSTD_CCtx_s;

namespace larder::chunks {

class pack_writer {
 public:
  // Starts a pack under a temporary name in `packs_dir`. `ops` and `io`
  // must outlive the writer; every write goes through `ops`. With
  // `try_direct`, the file is opened O_DIRECT where `ops` and the file
  // system accept it (direct() tells).
  static status create(file_ops& ops, const std::string& packs_dir, port::io_queue* io, bool try_direct,
                       bool compress, std::unique_ptr<pack_writer>* out);
  ~pack_writer();
  pack_writer(const pack_writer&) = delete;
  pack_writer& operator=(const pack_writer&) = delete;

  // Appends the chunk `page` (kPageSize bytes) named `name`: compressed when
  // that saves kMinCompressionSaving bytes, raw otherwise (without a zstd
  // attempt when worth_compressing says it cannot). Not durable before
  // finish(). *where says where it went.
  status add(const fingerprint& name, const void* page, index_entry* where);
  // Appends a chunk already encoded (`payload`: the page, or its zstd
  // frame), as another store holds it; the caller has checked it.
  status add_stored(const fingerprint& name, encoding how, std::string_view payload, index_entry* where);
  // Makes the pack durable, renames it to "<id>.pack", then publishes
  // "<id>.index". After an error the pack is abandoned (its temporary is
  // removed). The writer takes no more chunks either way.
  status finish();

  std::uint64_t id() const { return id_; }
  bool direct() const { return direct_; }
  std::uint64_t size() const { return written_ + staged_; }
  const std::vector<index_entry>& entries() const { return entries_; }

 private:
  // Eight blocks staged, then written with eight writes in flight.
  static constexpr std::size_t kStagingBlocks = 8;
  static constexpr std::size_t kStagingBytes = kStagingBlocks * kPackBlock;
  pack_writer() = default;
  status append(const void* bytes, std::size_t length);
  status write_staged();
  status wait_written();
  void abandon();

  std::string dir_, temporary_;
  file_ops* ops_ = nullptr;
  port::io_queue* io_ = nullptr;
  ZSTD_CCtx_s* zstd_ = nullptr;
  int fd_ = -1;
  bool direct_ = false;
  std::uint64_t id_ = 0;
  std::uint64_t written_ = 0;  // bytes written to the file or on their way
  std::size_t staged_ = 0;     // bytes in staging_ after them
  char* buffers_ = nullptr;    // two staging buffers of kStagingBytes, kPackAlign-aligned
  char* staging_ = nullptr;    // the one being filled; the other may be in flight
  port::io_request requests_[kStagingBlocks];
  std::size_t in_flight_ = 0;  // requests_ started and not yet waited for
  std::vector<index_entry> entries_;
  char compressed_[kPageSize];  // a zstd frame when the staging buffer lacks room for it
};

// The header of a record holding `stored` bytes of payload.
record_header record_header_of(const fingerprint& name, encoding how, std::size_t stored);

// The bytes of an index (`entries` in any order; sorted here).
std::string encode_index(std::uint64_t pack_id, std::uint64_t pack_size, std::vector<index_entry> entries);
// The index of a finished pack, published without a sync.
status publish_index(file_ops& ops, const std::string& packs_dir, std::uint64_t pack_id, std::uint64_t pack_size,
                     std::vector<index_entry> entries);
// The size of a finished pack holding `record_bytes` of records.
std::uint64_t pack_size_for(std::uint64_t record_bytes);
std::string pack_name(std::uint64_t pack_id);   // "<16 hex>.pack"
std::string index_name(std::uint64_t pack_id);  // "<16 hex>.index"

}  // namespace larder::chunks
