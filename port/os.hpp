// The platform layer: every system call larder makes goes through here.
// Each function returns 0 on success or an errno value on failure, and
// never allocates from larder's own heap (it is used by malloc itself).
#pragma once

#include <cstddef>
#include <cstdint>

namespace larder::port {

inline constexpr std::size_t kOsPageSize = 4096;

// ---- address space ------------------------------------------------------
// Maps `size` bytes at exactly `addr` without replacing anything: EEXIST when
// any part of the range is in use. `fd` < 0 maps private anonymous memory
// (never charged up front: MAP_NORESERVE); otherwise the file is mapped
// shared from offset 0, and may be shorter than `size` (touching past its
// end faults until it grows). `addr` and `size` are OS-page multiples.
// With `copy_on_write`, a file is mapped privately instead: writes stay in
// this process and never reach the file (the crash simulation's mapping).
int map_fixed(std::uintptr_t addr, std::size_t size, int fd, bool writable, bool copy_on_write = false);
// Maps `size` anonymous private bytes aligned to `alignment` (a power of
// two >= kOsPageSize) anywhere the kernel likes.
int map_aligned(std::size_t size, std::size_t alignment, void** out);
int unmap(void* addr, std::size_t size);
// Drops the pages' contents and gives their memory back to the system. For
// private anonymous memory the range reads as zero afterwards; for a shared
// file or shm mapping the file range is deallocated (a hole that reads as
// zero). `shared` says which kind the mapping is.
int decommit(void* addr, std::size_t size, bool shared);
// decommit() of each of the runs pages[0, count) forms (ascending page
// addresses; adjacent ones make one run), in batches of up to 1024 runs a
// system call where the kernel takes any advice for the calling process
// through process_madvise (Linux 6.13+), one call per run elsewhere. 0 or
// the first errno value; every run is tried either way.
int decommit_pages(const std::uintptr_t* pages, std::size_t count, bool shared);
// Faults the range in for writing now (MADV_POPULATE_WRITE), which costs
// one system call instead of a page fault per OS page. Best effort: returns
// an errno value where the kernel lacks it, and the pages then fault in on
// first touch as usual.
int populate(void* addr, std::size_t size);
// Moves the memory behind [from, from + size) to [to, to + size) by moving
// page-table entries: no copy and no page fault, and whatever `to` held is
// given back to the system. `from` then reads as zero, as after decommit().
// Both ranges lie in private anonymous memory from map_aligned, are OS-page
// multiples and do not overlap. Fails (EINVAL before Linux 5.7) with both
// ranges still mapped; `to` then reads as zero.
int move_memory(void* from, void* to, std::size_t size);
// Which OS pages of [addr, addr + size) (page-aligned) are in memory:
// out[i] is nonzero for page i (mincore; for a shared mapping, whether the
// backing's page is in memory, mapped here or not). 0 or an errno value.
int resident_pages(const void* addr, std::size_t size, unsigned char* out);
// Writes dirty pages of a shared file mapping back and waits for them.
int sync_range(void* addr, std::size_t size);

// ---- files and shared-memory objects -----------------------------------
// Opens `path` read-write (or read-only). With `create`, creates it with
// mode 0600; `exclusive` fails with EEXIST if it exists. `*created` tells.
int open_file(const char* path, bool create, bool exclusive, bool writable, int* fd, bool* created);
// The same for a POSIX shared-memory object named "/name".
int open_shm(const char* name, bool create, bool exclusive, bool writable, int* fd, bool* created);
int remove_file(const char* path);
// Renames `from` to `to` unless `to` exists (EEXIST), then makes the
// directory entry durable.
int rename_durably(const char* from, const char* to);
int remove_shm(const char* name);
int close_fd(int fd);
int file_size(int fd, std::uint64_t* size);
// Grows the file to at least `size` bytes without giving it storage: the
// new range is a hole, which reads as zero and costs nothing until
// reserve_file_range gives it storage.
int grow_file(int fd, std::uint64_t size);
// Reserves storage (disk blocks, or tmpfs pages) for the pages that
// [offset, offset + length) touches, in a file that covers them. A store
// through a mapping dirties its whole page, which needs storage for all of
// it, and on a full file system dies by SIGBUS: every range gets its
// storage here before it is first written, so that a full file system is
// an error (ENOSPC) instead. Cheap for a range that has storage already. 0
// where the file system cannot reserve (the store may then still fault).
int reserve_file_range(int fd, std::uint64_t offset, std::uint64_t length);
// The same where storage must be there whatever the file system: where it
// cannot reserve, zeros are written over those pages (and synced), which
// must then hold no data yet (a hole, or past the end of the file, which
// grows). For a mapping that nothing else guards from SIGBUS.
int allocate_file_range(int fd, std::uint64_t offset, std::uint64_t length);
// Whether reading a hole of the file through a mapping takes storage, as
// on tmpfs (shm objects included), where the page read is the storage: on
// a full file system such a read, not only a store, dies by SIGBUS. Disk
// file systems map zeros for it. *out false when the file system is
// unknown.
int hole_reads_take_storage(int fd, bool* out);
// Gives the storage of the whole pages inside [offset, offset + length)
// back to the file system, leaving a hole (the size stays). 0 where the file system cannot (the
// storage is then kept).
int release_file_range(int fd, std::uint64_t offset, std::uint64_t length);
// Makes the whole pages inside [offset, offset + length) read as zero:
// a hole where the file system can punch one, written zeros elsewhere.
int zero_file_range(int fd, std::uint64_t offset, std::uint64_t length);
// Whether any byte of [offset, offset + length) of the file is data, not
// a hole (lseek SEEK_DATA). A file system that cannot tell says data.
int file_has_data(int fd, std::uint64_t offset, std::uint64_t length, bool* out);
int read_at(int fd, void* buffer, std::size_t length, std::uint64_t offset);
int write_at(int fd, const void* buffer, std::size_t length, std::uint64_t offset);
int sync_file(int fd);
// Takes the single writer lock of a heap file (an open-file-description
// lock, released when the descriptor closes). EAGAIN when another
// descriptor holds it, in this process or another.
int lock_writer(int fd);
// The writer lock taken shared, by each process of a heap opened by
// several writers at once (lock_writer then fails for everyone, so a lone
// writer and shared writers exclude each other). On a descriptor that
// holds it exclusively, it becomes shared in one step. EAGAIN when a lone
// writer holds it.
int lock_writer_shared(int fd);
// The attach lock of a heap with shared writers, taken while a client
// attaches or detaches (a second lock of the file's second byte), waiting
// for it: who holds it decides alone whether it is the first or last
// client. 0 or an errno value.
int lock_attach(int fd);
int unlock_attach(int fd);
// Who blocks lock_writer: *read_lock tells whether the conflicting lock is
// a read lock (shared writers; larder's read-only openers take none), *pid
// the holder where the kernel says (-1 for descriptor locks).
// Returns 0, or an errno value (ENOENT when nothing blocks it any more).
int writer_lock_holder(int fd, bool* read_lock, int* pid);
// Calls fn(name, context) for each entry of `directory` whose name starts
// with `prefix` ("." and ".." excluded). Returns 0 or an errno value.
int for_each_directory_entry(const char* directory, const char* prefix, void (*fn)(const char* name, void* context),
                             void* context);
// Whether a process with this id exists (it may belong to another user).
bool process_exists(int pid);

// ---- threads, processes, misc -------------------------------------------
// Registers fork handlers (pthread_atfork); safe to call once at startup.
int at_fork(void (*prepare)(), void (*parent)(), void (*child)());
// Registers a destructor that runs for a thread's `value` at thread exit.
int thread_exit_key(void (*destructor)(void*), unsigned* key);
int thread_exit_key_set(unsigned key, void* value);
std::uint64_t random64();
std::uint64_t monotonic_ns();
// Wall-clock time (CLOCK_REALTIME) in ns since the epoch, for timestamps kept in heaps.
std::uint64_t realtime_ns();
int process_id();
// Writes `length` bytes to standard error without allocating.
void write_stderr(const char* text, std::size_t length);
// Reads environment variable `name` before and after libc is fully set up
// (no allocation); nullptr when absent.
const char* get_env(const char* name);
// Bytes of resident memory of this process, from /proc/self/statm.
std::size_t resident_bytes();
std::size_t peak_resident_bytes();

}  // namespace larder::port
