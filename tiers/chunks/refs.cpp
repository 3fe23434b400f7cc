// Refs of a chunk store: branches and tags (refs/heads/<n>, refs/tags/<n>,
// each holding a version id) and HEAD (a branch or a detached id). Every
// update replaces its file atomically under the refs lock.
#include "tiers/chunks/chunk_store.hpp"

#include "port/directory.hpp"
#include "port/os.hpp"
#include "tiers/chunks/files.hpp"

#include <cerrno>

namespace larder::chunks {
namespace {

constexpr std::string_view kBranchPrefix = "heads/";
constexpr std::string_view kTagPrefix = "tags/";
constexpr std::string_view kHeadBranch = "ref: ";
constexpr std::size_t kMaxRefName = 200;

bool valid_ref(std::string_view name) {
  std::string_view rest;
  if (name.starts_with(kBranchPrefix)) {
    rest = name.substr(kBranchPrefix.size());
  } else if (name.starts_with(kTagPrefix)) {
    rest = name.substr(kTagPrefix.size());
  } else {
    return false;
  }
  if (rest.empty() || rest.size() > kMaxRefName || rest.front() == '.' || is_temporary(rest)) return false;
  for (char c : rest) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

status bad_ref(const std::string& name) {
  return status(errc::invalid_argument, "\"" + name + "\" is not a ref name (heads/<name> or tags/<name>)");
}

// A version id on one line.
status parse_id_line(const std::string& text, const std::string& what, version_id* id) {
  std::string_view line(text);
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (!fingerprint::parse(line, id)) return status(errc::corrupt, what + ": not a version id");
  return {};
}

class refs_lock {
 public:
  explicit refs_lock(const std::string& refs_dir) : path_(refs_dir + "/lock") {}
  ~refs_lock() {
    if (fd_ >= 0) port::close_fd(fd_);
  }
  status take() {
    bool created = false;
    if (int err = port::open_file(path_.c_str(), true, false, true, &fd_, &created)) {
      return status::from_errno(err, "opening " + path_);
    }
    int err = port::lock_file(fd_, true, true);
    return err == 0 ? status{} : status::from_errno(err, "locking " + path_);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace

// Writes (or with `content` null, removes) refs/<name> under the refs lock,
// after checking that it names `expected` when that is given.
status chunk_store::update_ref_file(const std::string& name, const std::string* content, const version_id* expected) {
  refs_lock lock(refs_dir_);
  if (status s = lock.take(); !s.ok()) return s;
  if (expected != nullptr) {
    version_id now;
    status s = get_ref(name, &now);
    if (!s.ok() && !s.is(errc::not_found)) return s;
    const bool absent = !s.ok();
    const bool as_expected = *expected == version_id{} ? absent : !absent && now == *expected;
    if (!as_expected) return status(errc::already_exists, name + " has moved on");
  }
  std::string::size_type slash = name.find('/');
  std::string dir = refs_dir_ + "/" + name.substr(0, slash);
  if (content != nullptr) return publish_file(*files_, dir, name.substr(slash + 1), *content, true);
  std::string path = refs_dir_ + "/" + name;
  if (int err = files_->remove(path.c_str())) {
    return err == ENOENT ? status(errc::not_found, "no ref " + name) : status::from_errno(err, "removing " + path);
  }
  int err = files_->sync_directory(dir.c_str());
  return err == 0 ? status{} : status::from_errno(err, "syncing " + dir);
}

status chunk_store::set_ref(const std::string& name, const version_id& id, const version_id* expected) {
  if (!valid_ref(name)) return bad_ref(name);
  std::string content = id.hex() + "\n";
  return update_ref_file(name, &content, expected);
}

status chunk_store::get_ref(const std::string& name, version_id* id) {
  if (!valid_ref(name)) return bad_ref(name);
  std::string text;
  status s = read_file(refs_dir_ + "/" + name, &text);
  if (s.is(errc::not_found)) return status(errc::not_found, "no ref " + name);
  if (!s.ok()) return s;
  return parse_id_line(text, "refs/" + name, id);
}

status chunk_store::delete_ref(const std::string& name) {
  if (!valid_ref(name)) return bad_ref(name);
  return update_ref_file(name, nullptr, nullptr);
}

status chunk_store::list_refs(std::vector<ref_entry>* out) {
  out->clear();
  for (std::string_view prefix : {kBranchPrefix, kTagPrefix}) {
    std::string kind(prefix.substr(0, prefix.size() - 1));
    std::vector<std::string> names;
    if (status s = list_directory(refs_dir_ + "/" + kind, &names); !s.ok()) return s;
    for (const std::string& n : names) {
      std::string name = std::string(prefix) + n;
      if (!valid_ref(name)) continue;  // temporaries
      ref_entry e{name, {}};
      status s = get_ref(name, &e.id);
      if (s.is(errc::not_found)) continue;
      if (!s.ok()) return s;
      out->push_back(std::move(e));
    }
  }
  return {};
}

// Under the refs lock: a ref or HEAD is replaced after its manifest is
// committed, outside the store lock gc holds, so its temporary may be in
// flight while gc runs.
status chunk_store::remove_ref_temporaries(std::uint64_t* removed) {
  refs_lock lock(refs_dir_);
  if (status s = lock.take(); !s.ok()) return s;
  for (const std::string& dir : {root_, refs_dir_ + "/heads", refs_dir_ + "/tags"}) {
    if (status s = remove_temporaries_in(dir, removed); !s.ok()) return s;
  }
  return {};
}

status chunk_store::set_head(const std::string& branch) {
  if (!branch.starts_with(kBranchPrefix) || !valid_ref(branch)) return bad_ref(branch);
  refs_lock lock(refs_dir_);
  if (status s = lock.take(); !s.ok()) return s;
  return publish_file(*files_, root_, "HEAD", std::string(kHeadBranch) + branch + "\n", true);
}

status chunk_store::set_head_detached(const version_id& id) {
  refs_lock lock(refs_dir_);
  if (status s = lock.take(); !s.ok()) return s;
  return publish_file(*files_, root_, "HEAD", id.hex() + "\n", true);
}

status chunk_store::get_head(head_state* out) {
  *out = head_state{};
  std::string text;
  status s = read_file(root_ + "/HEAD", &text);
  if (s.is(errc::not_found)) text = std::string(kHeadBranch) + "heads/main\n";  // a new store, as git init
  else if (!s.ok()) return s;
  if (!std::string_view(text).starts_with(kHeadBranch)) {
    out->detached = true;
    out->has_version = true;
    return parse_id_line(text, "HEAD", &out->id);
  }
  std::string_view branch = std::string_view(text).substr(kHeadBranch.size());
  if (branch.ends_with('\n')) branch.remove_suffix(1);
  out->branch = branch;
  if (!valid_ref(out->branch) || !branch.starts_with(kBranchPrefix)) return status(errc::corrupt, "HEAD: bad branch name");
  s = get_ref(out->branch, &out->id);
  if (s.is(errc::not_found)) return {};
  out->has_version = s.ok();
  return s;
}

}  // namespace larder::chunks
