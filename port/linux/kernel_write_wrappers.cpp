// Wrappers for the libc calls through which the kernel writes into a
// program's buffers. A write-protected page makes the kernel fail such a
// call with EFAULT rather than fault into a handler, so while a signal-based
// tracker exists each wrapper first marks its buffers written and writable
// (prepare_kernel_write), and retries if a collect re-protected them before
// the kernel wrote. Without such a tracker a wrapper costs one atomic load.
// Calls that libc makes internally (fread's own reads, for instance) bypass
// these; docs/tracking.md lists what is covered.
#include "port/linux/tracker_backends.hpp"

#include <larder/export.hpp>

#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace larder::port {
namespace {

constexpr int kRetries = 16;

template <class Fn>
Fn next_definition(std::atomic<void*>& cache, const char* name) {
  void* fn = cache.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = ::dlsym(RTLD_NEXT, name);
    cache.store(fn, std::memory_order_release);
  }
  return reinterpret_cast<Fn>(fn);
}

template <class Prepare, class Call>
auto prepared_call(Prepare&& prepare, Call&& call) {
  for (int attempt = 0;; ++attempt) {
    bool tracked = kernel_writes_need_preparing() && prepare();
    auto result = call();
    if (result >= 0 || errno != EFAULT || attempt == kRetries) return result;
    // EFAULT from a page that a tracker protected meanwhile (one may have
    // started since the check above) is worth retrying; a bad pointer in a
    // process without trackers is not.
    if (!tracked && !kernel_writes_need_preparing()) return result;
  }
}

bool prepare_iov(const iovec* iov, int count) {
  bool any = false;
  for (int i = 0; i < count; ++i) any |= prepare_kernel_write(iov[i].iov_base, iov[i].iov_len);
  return any;
}

bool prepare_msg(const msghdr* msg) {
  bool any = prepare_iov(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  any |= prepare_kernel_write(msg->msg_name, msg->msg_namelen);
  any |= prepare_kernel_write(msg->msg_control, msg->msg_controllen);
  return any;
}

}  // namespace

// Referenced from fault_dispatch.cpp, so that linking the static library
// pulls these wrappers in even when another library linked earlier (a
// sanitizer runtime) already defines read & co.
void link_kernel_write_wrappers() noexcept {}

}  // namespace larder::port

using larder::port::next_definition;
using larder::port::prepare_kernel_write;
using larder::port::prepared_call;

#define LARDER_NEXT(type, name)              \
  static std::atomic<void*> next_##name{};   \
  auto real = next_definition<type>(next_##name, #name); \
  if (real == nullptr) return errno = ENOSYS, -1

extern "C" {

LARDER_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t), read);
  return prepared_call([&] { return prepare_kernel_write(buf, n); }, [&] { return real(fd, buf, n); });
}

LARDER_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, size_t), __read_chk);
  return prepared_call([&] { return prepare_kernel_write(buf, n); }, [&] { return real(fd, buf, n, buflen); });
}

LARDER_EXPORT ssize_t pread(int fd, void* buf, size_t n, off_t offset) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, off_t), pread);
  return prepared_call([&] { return prepare_kernel_write(buf, n); }, [&] { return real(fd, buf, n, offset); });
}

LARDER_EXPORT ssize_t pread64(int fd, void* buf, size_t n, off_t offset) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, off_t), pread64);
  return prepared_call([&] { return prepare_kernel_write(buf, n); }, [&] { return real(fd, buf, n, offset); });
}

LARDER_EXPORT ssize_t __pread_chk(int fd, void* buf, size_t n, off_t offset, size_t buflen) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, off_t, size_t), __pread_chk);
  return prepared_call([&] { return prepare_kernel_write(buf, n); },
                       [&] { return real(fd, buf, n, offset, buflen); });
}

LARDER_EXPORT ssize_t __pread64_chk(int fd, void* buf, size_t n, off_t offset, size_t buflen) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, off_t, size_t), __pread64_chk);
  return prepared_call([&] { return prepare_kernel_write(buf, n); },
                       [&] { return real(fd, buf, n, offset, buflen); });
}

LARDER_EXPORT ssize_t readv(int fd, const iovec* iov, int count) {
  LARDER_NEXT(ssize_t (*)(int, const iovec*, int), readv);
  return prepared_call([&] { return larder::port::prepare_iov(iov, count); }, [&] { return real(fd, iov, count); });
}

LARDER_EXPORT ssize_t preadv(int fd, const iovec* iov, int count, off_t offset) {
  LARDER_NEXT(ssize_t (*)(int, const iovec*, int, off_t), preadv);
  return prepared_call([&] { return larder::port::prepare_iov(iov, count); },
                       [&] { return real(fd, iov, count, offset); });
}

LARDER_EXPORT ssize_t preadv64(int fd, const iovec* iov, int count, off_t offset) {
  LARDER_NEXT(ssize_t (*)(int, const iovec*, int, off_t), preadv64);
  return prepared_call([&] { return larder::port::prepare_iov(iov, count); },
                       [&] { return real(fd, iov, count, offset); });
}

LARDER_EXPORT ssize_t preadv2(int fd, const iovec* iov, int count, off_t offset, int flags) {
  LARDER_NEXT(ssize_t (*)(int, const iovec*, int, off_t, int), preadv2);
  return prepared_call([&] { return larder::port::prepare_iov(iov, count); },
                       [&] { return real(fd, iov, count, offset, flags); });
}

LARDER_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, int), recv);
  return prepared_call([&] { return prepare_kernel_write(buf, n); }, [&] { return real(fd, buf, n, flags); });
}

LARDER_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, size_t, int), __recv_chk);
  return prepared_call([&] { return prepare_kernel_write(buf, n); },
                       [&] { return real(fd, buf, n, buflen, flags); });
}

LARDER_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* from_len) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*), recvfrom);
  return prepared_call(
      [&] {
        bool any = prepare_kernel_write(buf, n);
        if (from != nullptr && from_len != nullptr) any |= prepare_kernel_write(from, *from_len);
        return any | prepare_kernel_write(from_len, from_len ? sizeof *from_len : 0);
      },
      [&] { return real(fd, buf, n, flags, from, from_len); });
}

LARDER_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                                     socklen_t* from_len) {
  LARDER_NEXT(ssize_t (*)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*), __recvfrom_chk);
  return prepared_call(
      [&] {
        bool any = prepare_kernel_write(buf, n);
        if (from != nullptr && from_len != nullptr) any |= prepare_kernel_write(from, *from_len);
        return any | prepare_kernel_write(from_len, from_len ? sizeof *from_len : 0);
      },
      [&] { return real(fd, buf, n, buflen, flags, from, from_len); });
}

LARDER_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  LARDER_NEXT(ssize_t (*)(int, msghdr*, int), recvmsg);
  return prepared_call(
      [&] {
        bool buffers = larder::port::prepare_msg(msg);  // both must run
        bool header = prepare_kernel_write(msg, sizeof *msg);
        return buffers || header;
      },
                       [&] { return real(fd, msg, flags); });
}

}  // extern "C"
