// larder: inspect heaps from the command line.
//
//   larder info  HEAP    superblock facts and usage
//   larder roots HEAP    the named roots
//   larder pods  HEAP    the pods and their usage
//   larder create HEAP [--reserve BYTES]
//
// HEAP is a file path, or a shm object name starting with "/" given with
// --shm. Inspection opens the heap read-only, so it works while another
// process has it open for writing. See docs/tools/larder.md.
#include <larder/larder.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>

namespace {

struct target {
  std::string name;
  bool shm = false;
};

larder::heap open_heap(const target& t, bool read_only) {
  larder::heap_options options;
  options.kind = t.shm ? larder::backing::shm : larder::backing::file;
  options.name = t.name;
  options.mode = larder::open_mode::open;
  options.read_only = read_only;
  return larder::heap(options);
}

void add_target(CLI::App* command, target* t) {
  command->add_option("heap", t->name, "heap file path (or shm name with --shm)")->required();
  command->add_flag("--shm", t->shm, "HEAP names a POSIX shared-memory object");
}

int info(const target& t) {
  larder::heap h = open_heap(t, true);
  larder::heap_stats st = h.stats();
  std::printf("heap        %s\nuuid        %s\nbase        %p\nreserve     %zu MiB\nsize        %zu MiB\n"
              "segments    %zu in use\npods        %zu\nroots       %zu\n",
              t.name.c_str(), h.uuid().c_str(), h.base(), st.reserve >> 20, st.mapped_size >> 20,
              st.segments_in_use, st.pods, st.roots);
  return 0;
}

int roots(const target& t) {
  larder::heap h = open_heap(t, true);
  for (const auto& r : h.roots()) std::printf("%-40s %12zu bytes at %p\n", r.name.c_str(), r.size, r.object);
  return 0;
}

int pods(const target& t) {
  // Usage figures need the heap's page state, which only a writer rebuilds.
  larder::heap h = open_heap(t, false);
  std::printf("%-6s %-30s %14s %14s\n", "id", "name", "bytes in use", "bytes held");
  for (const auto& p : h.pods())
    std::printf("%-6u %-30s %14zu %14zu\n", p.id, p.name.c_str(), p.bytes_in_use, p.bytes_committed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"larder: inspect and create larder heaps"};
  app.require_subcommand(1);
  target t;
  std::size_t reserve = std::size_t{64} << 30;
  auto* info_cmd = app.add_subcommand("info", "superblock facts and usage");
  auto* roots_cmd = app.add_subcommand("roots", "list the named roots");
  auto* pods_cmd = app.add_subcommand("pods", "list the pods and their usage (opens for writing)");
  auto* create_cmd = app.add_subcommand("create", "create an empty heap");
  for (auto* c : {info_cmd, roots_cmd, pods_cmd, create_cmd}) add_target(c, &t);
  create_cmd->add_option("--reserve", reserve, "address space to reserve, in bytes");
  CLI11_PARSE(app, argc, argv);
  try {
    if (*info_cmd) return info(t);
    if (*roots_cmd) return roots(t);
    if (*pods_cmd) return pods(t);
    larder::heap_options options;
    options.kind = t.shm ? larder::backing::shm : larder::backing::file;
    options.name = t.name;
    options.mode = larder::open_mode::create;
    options.reserve = reserve;
    larder::heap h(options);
    std::printf("created %s (uuid %s) at %p\n", t.name.c_str(), h.uuid().c_str(), h.base());
    return 0;
  } catch (const larder::error& e) {
    std::fprintf(stderr, "larder: %s\n", e.what());
    return 1;
  }
}
