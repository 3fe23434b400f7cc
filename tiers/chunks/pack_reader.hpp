// Reading packs: their index files, the rebuild of an index from the pack
// itself, and the decoding and verification of one chunk record.
#pragma once

#include "tiers/chunks/fingerprint.hpp"
#include "tiers/chunks/format.hpp"

#include <larder/status.hpp>

#include <string>
#include <string_view>
#include <vector>

struct ZSTD_DCtx_s;

namespace larder::chunks {

// "<16 hex>.pack" → its id; false for any other name.
bool parse_pack_name(std::string_view name, std::uint64_t* id);

// Loads "<id>.index": not_found when absent, corrupt when its checksum,
// magic or pack id is wrong or an entry is no record the pack could hold
// (a stored size over a page, a range past its end), newer_format for a
// later major version.
// *pack_size is the size of the pack the index was written for.
status load_index(const std::string& packs_dir, std::uint64_t pack_id, std::vector<index_entry>* out,
                  std::uint64_t* pack_size);

// The same from an index's bytes, named `what` in errors.
status decode_index(std::string_view bytes, const std::string& what, std::uint64_t pack_id,
                    std::vector<index_entry>* out, std::uint64_t* pack_size);

// Rebuilds the index of the pack open at `fd` from its records. On damage
// (a bad header, record or footer: an unfinished or cut pack) returns
// corrupt, with *out holding the records before the damage.
// With `bytes`, the whole pack is left there.
status scan_pack(int fd, std::uint64_t pack_id, const std::string& path, std::vector<index_entry>* out,
                 std::string* bytes = nullptr);

// Decodes the record `record` (header and payload, as read from the pack)
// into `page` and checks that it is the chunk `want`. Returns nullptr, or
// what is wrong with it.
const char* decode_record(const char* record, std::size_t length, const fingerprint& want, ZSTD_DCtx_s* zstd,
                          void* page);

// Checks a chunk's payload as another store sent it (the page, or its zstd
// frame) against its name, decoding it into `page`. Returns nullptr, or
// what is wrong with it.
const char* check_payload(const fingerprint& name, encoding how, std::string_view payload, ZSTD_DCtx_s* zstd,
                          void* page);

}  // namespace larder::chunks
