// The mark of a checkout in progress; see checkout_mark.hpp.
#include "runtime/checkout_mark.hpp"

#include "tiers/chunks/file_ops.hpp"
#include "tiers/chunks/files.hpp"

#include <cerrno>

namespace larder {
namespace {

std::string mark_path(const std::string& heap_file) { return heap_file + ".checkout"; }

}  // namespace

status set_checkout_mark(const std::string& heap_file, const std::string& version_id) {
  const std::string path = mark_path(heap_file);
  const std::string directory = chunks::parent_directory(path);
  const std::string name = path.substr(path.find_last_of('/') + 1);
  return chunks::publish_file(chunks::process_file_ops(), directory, name, version_id + "\n", true);
}

status clear_checkout_mark(const std::string& heap_file) {
  const std::string path = mark_path(heap_file);
  chunks::file_ops& ops = chunks::process_file_ops();
  int err = ops.remove(path.c_str());
  if (err == ENOENT) return {};
  if (err == 0) err = ops.sync_directory(chunks::parent_directory(path).c_str());
  return err == 0 ? status() : status::from_errno(err, "removing " + path);
}

status refuse_if_checkout_marked(const std::string& heap_file) {
  std::string version;
  status s = chunks::read_file(mark_path(heap_file), &version);
  if (s.is(errc::not_found)) return {};
  if (!s.ok()) return s;
  while (!version.empty() && version.back() == '\n') version.pop_back();
  return status(errc::corrupt, heap_file + ": a checkout to version " + version +
                                   " did not finish, so the heap holds part of two versions; write a whole version "
                                   "into it with `larder checkout --offline` (restore_version)");
}

}  // namespace larder
