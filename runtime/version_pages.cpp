// Reading a version outside an open heap; see version_pages.hpp.
#include "runtime/version_pages.hpp"

#include "port/os.hpp"
#include "recovery/superblock.hpp"
#include "runtime/versions_state.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace larder {

namespace {

constexpr std::size_t kBatchPages = (std::size_t{64} << 20) / port::kOsPageSize;

status check_geometry(const chunks::version_id& id, const chunks::version_record& v) {
  const std::uint64_t first_page = layout::kMetaOffset / port::kOsPageSize;
  const char* why = nullptr;
  if (v.base_address % layout::kSegmentSize != 0 || v.base_address == 0) {
    why = "a base address that is not a multiple of 4 MiB";
  } else if (v.heap_size < layout::kSegmentSize || v.heap_size % layout::kSegmentSize != 0 ||
             v.heap_size > layout::kMaxReserve || v.base_address + v.heap_size > layout::kAddressLimit) {
    why = "a size no heap has";
  } else if (!v.pages.empty() && v.pages.front().page < first_page) {
    why = "a page inside the superblocks";
  }
  if (why == nullptr) return {};
  return status(errc::corrupt, "version " + id.hex() + " records " + why);
}

}  // namespace

status read_stored_version(const std::string& directory, std::string_view name,
                           std::unique_ptr<chunks::chunk_store>* store, stored_version* out) {
  if (status s = chunks::chunk_store::open(directory, chunks::store_options{}, store); !s.ok()) return s;
  if (status s = resolve_version(**store, name, &out->id, &out->branch); !s.ok()) return s;
  if (status s = (*store)->read_version(out->id, &out->record); !s.ok()) return s;
  return check_geometry(out->id, out->record);
}

layout::superblock version_superblock(const chunks::version_record& v, std::uint64_t reserve) {
  layout::superblock sb{};
  sb.magic = layout::kHeapMagic;
  sb.format_major = layout::kFormatMajor;
  sb.format_minor = layout::kFormatMinor;
  sb.generation = 1;
  std::memcpy(sb.uuid, v.heap_uuid.data(), sizeof(sb.uuid));
  sb.base = v.base_address;
  sb.reserve = reserve;
  sb.size = v.heap_size;
  sb.layout_signature = layout::kLayoutSignature;
  sb.backing = static_cast<std::uint32_t>(layout::backing_kind::file);
  sb.created_ns = port::realtime_ns();
  recovery::seal_superblock(&sb);
  return sb;
}

status for_each_page_run(chunks::chunk_store& store, const chunks::version_record& v, const page_run_fn& put) {
  const std::size_t total = v.pages.size();
  std::vector<char> staging(std::min(total, kBatchPages) * port::kOsPageSize);
  std::vector<chunks::fingerprint> names;
  for (std::size_t done = 0; done < total; done += kBatchPages) {
    const std::size_t n = std::min(kBatchPages, total - done);
    names.clear();
    for (std::size_t i = 0; i < n; ++i) names.push_back(v.pages[done + i].chunk);
    if (status s = store.get_batch(names.data(), n, staging.data()); !s.ok()) return s;
    for (std::size_t i = 0; i < n;) {
      std::size_t run = 1;
      while (i + run < n && v.pages[done + i + run].page == v.pages[done + i].page + run) ++run;
      if (status s = put(v.pages[done + i].page, run, staging.data() + i * port::kOsPageSize); !s.ok()) return s;
      i += run;
    }
  }
  return {};
}

}  // namespace larder
