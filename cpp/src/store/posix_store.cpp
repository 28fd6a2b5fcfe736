// Store backed by a directory tree. Keys map 1:1 to relative file paths.
//
// Concurrency model: no locks anywhere. Each set() writes a temp file whose name
// is unique per call (pid + 64 random bits, created with O_EXCL) and renames it
// over the target, so any number of threads and processes, on one host or many
// sharing a parallel filesystem, can write the same directory at once.
#include "zvf/store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <system_error>
#include <thread>

#include "zvf/error.hpp"

namespace fs = std::filesystem;

namespace zvf {

namespace {

constexpr const char* kTmpSuffix = ".zvftmp";

std::string errno_text(int err) { return std::strerror(err); }

// Starts the writeback of a file just written, without waiting: a hint, so a
// failure is ignored here (sync() reports what did not reach the disk).
void start_write_back(int fd) {
#ifdef __linux__
  (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
  (void)fd;
#endif
}

[[noreturn]] void io_fail(const std::string& what, const std::string& key, const std::string& path, int err) {
  std::string why = errno_text(err);
  if (err == ENOTDIR) {  // name the file that stands where a directory should be (say, the store path itself)
    std::error_code ec;
    for (fs::path p = fs::path(path).parent_path(); !p.empty() && p != p.parent_path(); p = p.parent_path())
      if (fs::exists(p, ec) && !fs::is_directory(p, ec)) {
        why += ": " + p.string() + " is a file, not a directory";
        break;
      }
  }
  fail(Error::Code::IO, what + " key '" + key + "' (" + path + "): " + why);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// See memory_store.cpp: "" is the whole store, else a key with an optional trailing '/'.
std::string normalize_prefix(const std::string& prefix) {
  if (prefix.empty()) return prefix;
  std::string p = prefix;
  if (p.size() > 1 && p.back() == '/') p.pop_back();
  check_key(p);
  return p;
}

// Random bits for temp names. getrandom() has no state to share between
// threads; the fallback only has to differ between concurrent callers, and
// O_EXCL catches the rest.
std::uint64_t temp_token() {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof v, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof v)) return v;
  v = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  v ^= std::hash<std::thread::id>{}(std::this_thread::get_id()) * 0x9E3779B97F4A7C15ull;
  return v;
}

std::string temp_path_for(const std::string& path) {
  char buf[48];
  std::snprintf(buf, sizeof buf, ".%ld-%016llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(temp_token()));
  return path + buf + kTmpSuffix;
}

// Walks a list of buffers through readv/writev-style calls, which may stop short.
template <class Byte>
class PartCursor {
 public:
  explicit PartCursor(std::span<const std::span<Byte>> parts) : parts_(parts) {}
  // Puts what is left into iov (up to kMaxIov entries); returns the count, 0 when done.
  int fill(iovec* iov) const {
    int cnt = 0;
    for (std::size_t k = first_; k < parts_.size() && cnt < static_cast<int>(kMaxIov); ++k) {
      const std::size_t off = k == first_ ? skip_ : 0;
      if (parts_[k].size() == off) continue;
      iov[cnt].iov_base = const_cast<std::uint8_t*>(parts_[k].data() + off);
      iov[cnt].iov_len = parts_[k].size() - off;
      ++cnt;
    }
    return cnt;
  }
  void advance(std::size_t n) {
    while (first_ < parts_.size()) {
      const std::size_t avail = parts_[first_].size() - skip_;
      if (n < avail) {
        skip_ += n;
        return;
      }
      n -= avail;
      ++first_;
      skip_ = 0;
    }
  }
  static constexpr std::size_t kMaxIov = 64;  // well below IOV_MAX; callers pass a few parts

 private:
  std::span<const std::span<Byte>> parts_;
  std::size_t first_ = 0, skip_ = 0;  // next part and bytes of it already done
};

// Writes the parts to fd in as few syscalls as possible (writev), retrying on
// EINTR and short writes. Returns 0 or errno.
int write_all(int fd, std::span<const ByteSpan> parts) {
  PartCursor<const std::uint8_t> cur(parts);
  iovec iov[PartCursor<const std::uint8_t>::kMaxIov];
  while (const int cnt = cur.fill(iov)) {
    const ssize_t n = ::writev(fd, iov, cnt);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    cur.advance(static_cast<std::size_t>(n));
  }
  return 0;
}

// mkdir -p that tolerates another process creating the same directories.
int make_parents(const fs::path& file) {
  const fs::path parent = file.parent_path();
  if (parent.empty()) return 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (!ec || fs::is_directory(parent)) return 0;
    if (attempt == 2) return ec.value() ? ec.value() : EIO;
  }
  return EIO;
}

int open_fd(const std::string& path, int flags, mode_t mode = 0) {
  while (true) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd >= 0 || errno != EINTR) return fd;
  }
}

}  // namespace

PosixStore::PosixStore(std::string root) : root_(std::move(root)) {
  if (root_.empty()) invalid("PosixStore needs a directory path, got an empty string");
  // "/data/x/" and "/data/x" are the same store; keep describe() canonical.
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::optional<Bytes> PosixStore::get(const std::string& key) const {
  check_key(key);
  const std::string path = root_ + "/" + key;
  const int fd = open_fd(path, O_RDONLY);
  if (fd < 0) {
    // ENOTDIR: an ancestor of the key is a file, so the key cannot exist.
    const int err = errno;  // before any allocation can disturb it
    if (err == ENOENT || err == ENOTDIR) return std::nullopt;
    io_fail("cannot open", key, path, err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    io_fail("cannot stat", key, path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    // A directory is a prefix of other keys, not a value (as in MemoryStore).
    ::close(fd);
    return std::nullopt;
  }
  // Read until EOF rather than trusting st_size. The spare byte lets the
  // final, EOF-detecting read happen without reallocating.
  Bytes out(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 0) + 1);
  std::size_t have = 0;
  while (true) {
    if (have == out.size()) out.resize(out.size() + out.size() / 2 + 4096);  // file grew
    const ssize_t n = ::read(fd, out.data() + have, out.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      io_fail("cannot read", key, path, err);
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(have);
  return out;
}

std::optional<std::uint64_t> PosixStore::size_of(const std::string& key) const {
  check_key(key);
  const std::string path = root_ + "/" + key;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return std::nullopt;
    io_fail("cannot stat", key, path, err);
  }
  if (S_ISDIR(st.st_mode)) return std::nullopt;  // a prefix, not a value (as in get)
  return static_cast<std::uint64_t>(st.st_size);
}

std::optional<std::size_t> PosixStore::read_parts(const std::string& key,
                                                  std::span<const std::span<std::uint8_t>> parts) const {
  check_key(key);
  const std::string path = root_ + "/" + key;
  const int fd = open_fd(path, O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return std::nullopt;
    io_fail("cannot open", key, path, err);
  }
  // preadv until the parts are full or the file ends.
  PartCursor<std::uint8_t> cur(parts);
  iovec iov[PartCursor<std::uint8_t>::kMaxIov];
  std::size_t done = 0;
  while (const int cnt = cur.fill(iov)) {
    const ssize_t n = ::preadv(fd, iov, cnt, static_cast<off_t>(done));
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      ::close(fd);
      if (err == EISDIR) return std::nullopt;  // a prefix, not a value (as in get)
      io_fail("cannot read", key, path, err);
    }
    if (n == 0) break;  // end of file
    done += static_cast<std::size_t>(n);
    cur.advance(static_cast<std::size_t>(n));
  }
  ::close(fd);
  return done;
}

void PosixStore::set(const std::string& key, ByteSpan value) {
  set_parts(key, std::span<const ByteSpan>(&value, 1));
}

std::size_t PosixStore::remove_temporaries(const std::string& dir_prefix) {
  std::size_t removed = 0;
  std::error_code ec;
  const fs::path dir = dir_prefix.empty() ? fs::path(root_) : fs::path(root_) / dir_prefix;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.ends_with(kTmpSuffix) && ::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

std::vector<std::string> PosixStore::list_dir(const std::string& prefix) const {
  // One directory read instead of the recursive walk of the default.
  std::vector<std::string> names;
  std::error_code ec;
  const fs::path dir = prefix.empty() ? fs::path(root_) : fs::path(root_) / prefix;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.size() >= std::strlen(kTmpSuffix) && name.ends_with(kTmpSuffix)) continue;
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

void PosixStore::set_parts(const std::string& key, std::span<const ByteSpan> parts) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  std::string tmp;
  int fd = -1;
  // Try the open first: the parent usually exists, and skipping the mkdir
  // walk saves metadata round trips on parallel filesystems.
  int mkdirs = 0;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    tmp = temp_path_for(path);
    fd = open_fd(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0) break;
    const int err = errno;
    if (err == EEXIST) continue;  // name clash with another writer: draw again
    // Retried because a concurrent erase_prefix may remove what we just made.
    if (err == ENOENT && mkdirs++ < 3) {
      if (const int merr = make_parents(path)) io_fail("cannot create parent directories for", key, path, merr);
      continue;
    }
    io_fail("cannot create temp file " + tmp + " for", key, path, err);
  }
  if (fd < 0) io_fail("cannot create a unique temp file for", key, path, EEXIST);

  int err = write_all(fd, parts);
  if (err == 0 && write_back_early_.load(std::memory_order_relaxed)) start_write_back(fd);
  if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    io_fail("cannot write", key, path, err);
  }
}

void PosixStore::set_unpublished(const std::string& key, std::span<const ByteSpan> parts) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  // A new file is written in place: one create instead of create + rename, which
  // halves the metadata operations per cell (they dominate on Lustre and GPFS).
  int fd = -1, mkdirs = 0;
  while (fd < 0) {
    fd = open_fd(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0) break;
    const int err = errno;
    if (err == EEXIST) return set_parts(key, parts);  // replacing: stay atomic for readers
    if (err == ENOENT && mkdirs++ < 3) {
      if (const int merr = make_parents(path)) io_fail("cannot create parent directories for", key, path, merr);
      continue;
    }
    io_fail("cannot create", key, path, err);
  }
  int err = write_all(fd, parts);
  if (err == 0 && write_back_early_.load(std::memory_order_relaxed)) start_write_back(fd);
  if (::close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    io_fail("cannot write", key, path, err);
  }
}

bool PosixStore::exists(const std::string& key) const {
  check_key(key);
  const std::string path = root_ + "/" + key;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return false;
    io_fail("cannot stat", key, path, err);
  }
  return !S_ISDIR(st.st_mode);
}

void PosixStore::erase(const std::string& key) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  if (::unlink(path.c_str()) != 0) {
    // Missing keys are fine; EISDIR/EPERM on a directory means "no value here".
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == EISDIR) return;
    if (err == EPERM && fs::is_directory(path)) return;
    io_fail("cannot erase", key, path, err);
  }
}

void PosixStore::erase_prefix(const std::string& prefix) {
  const std::string p = normalize_prefix(prefix);
  std::error_code ec;
  if (p.empty()) {
    // Empty the root but keep it: it may be a mount point or owned by someone else.
    fs::directory_iterator it(root_, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) return;
      fail(Error::Code::IO, "cannot list store root " + root_ + ": " + ec.message());
    }
    while (it != fs::directory_iterator()) {
      const fs::path child = it->path();
      fs::remove_all(child, ec);
      if (ec) fail(Error::Code::IO, "cannot remove " + child.string() + ": " + ec.message());
      it.increment(ec);
      if (ec) fail(Error::Code::IO, "cannot list store root " + root_ + ": " + ec.message());
    }
    return;
  }
  const std::string path = root_ + "/" + p;
  fs::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
    fail(Error::Code::IO, "cannot erase prefix '" + p + "' (" + path + "): " + ec.message());
  }
}

std::vector<std::string> PosixStore::list(const std::string& prefix) const {
  const std::string p = normalize_prefix(prefix);
  const std::string top = p.empty() ? root_ : root_ + "/" + p;
  std::vector<std::string> out;

  struct stat st {};
  if (::stat(top.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return out;
    fail(Error::Code::IO, "cannot list prefix '" + p + "' (" + top + "): " + errno_text(err));
  }
  if (!S_ISDIR(st.st_mode)) {
    // The prefix is itself a key: the subtree is that one key.
    if (!p.empty() && !ends_with(p, kTmpSuffix)) out.push_back(p);
    return out;
  }

  // Explicit stack instead of recursive_directory_iterator so a subdirectory
  // removed by a concurrent erase is skipped rather than aborting the walk.
  std::vector<std::pair<fs::path, std::string>> todo{{fs::path(top), p}};
  while (!todo.empty()) {
    auto [dir, key_prefix] = std::move(todo.back());
    todo.pop_back();
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) continue;
      fail(Error::Code::IO, "cannot list " + dir.string() + ": " + ec.message());
    }
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string key = key_prefix.empty() ? name : key_prefix + "/" + name;
      std::error_code sec;
      // Recurse into real directories only, so a symlink loop cannot trap us.
      if (it->is_directory(sec) && !it->is_symlink(sec)) {
        todo.emplace_back(it->path(), key);
      } else if (!ends_with(name, kTmpSuffix) && it->is_regular_file(sec)) {
        out.push_back(key);
      }
    }
    if (ec && ec != std::errc::no_such_file_or_directory) {
      fail(Error::Code::IO, "cannot list " + dir.string() + ": " + ec.message());
    }
  }
  return out;
}

std::vector<std::string> PosixStore::list_temporaries(const std::string& prefix) const {
  const std::string p = normalize_prefix(prefix);
  std::vector<std::string> out;
  std::vector<std::pair<fs::path, std::string>> todo{{fs::path(p.empty() ? root_ : root_ + "/" + p), p}};
  while (!todo.empty()) {  // best effort: an unreadable directory is skipped, not an error
    auto [dir, key_prefix] = std::move(todo.back());
    todo.pop_back();
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string key = key_prefix.empty() ? name : key_prefix + "/" + name;
      std::error_code sec;
      if (it->is_directory(sec) && !it->is_symlink(sec)) todo.emplace_back(it->path(), key);
      else if (ends_with(name, kTmpSuffix)) out.push_back(key);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void PosixStore::rename(const std::string& from, const std::string& to) {
  check_key(from);
  check_key(to);
  const std::string src = root_ + "/" + from;
  const std::string dst = root_ + "/" + to;
  if (!exists(from)) fail(Error::Code::NotFound, "cannot rename '" + from + "' in " + root_ + ": key does not exist");
  if (const int err = make_parents(dst)) io_fail("cannot create parent directories for", to, dst, err);
  std::error_code ec;
  fs::rename(src, dst, ec);
  if (ec) {
    fail(Error::Code::IO, "cannot rename key '" + from + "' to '" + to + "' (" + src + " -> " + dst +
                              "): " + ec.message());
  }
}

bool PosixStore::root_exists() const {
  std::error_code ec;
  return fs::is_directory(root_, ec);
}

void PosixStore::remove_root_if_empty() {
  std::error_code ec;
  if (fs::is_directory(root_, ec) && fs::is_empty(root_, ec) && !ec) fs::remove(root_, ec);
}

void PosixStore::sync() {
#ifdef __linux__
  // One call for the whole store: fsync of each cell file would cost an open per
  // file (tens of thousands for small chunks), where syncfs() flushes them all.
  const int fd = open_fd(root_, O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    const int err = errno;
    fail(Error::Code::IO, "cannot open the store directory " + root_ + " to sync it: " + errno_text(err));
  }
  if (::syncfs(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail(Error::Code::IO, "cannot sync the filesystem under " + root_ + " (syncfs): " + errno_text(err) +
                              "; what was written may not be on stable storage");
  }
  ::close(fd);
#else
  ::sync();
#endif
}

void PosixStore::sync_key(const std::string& key) {
  check_key(key);
  const std::string path = root_ + "/" + key;
  const int fd = open_fd(path, O_RDONLY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      fail(Error::Code::NotFound, "cannot sync key '" + key + "' (" + path + "): key does not exist");
    }
    io_fail("cannot open", key, path, err);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    io_fail("cannot fsync", key, path, err);
  }
  ::close(fd);
  // The rename that published the key lives in the directory; sync it too.
  const std::string dir = fs::path(path).parent_path().string();
  const int dfd = open_fd(dir, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) {
    const int err = errno;
    io_fail("cannot open directory " + dir + " of", key, path, err);
  }
  if (::fsync(dfd) != 0 && errno != EINVAL) {  // EINVAL: fs cannot sync directories
    const int err = errno;
    ::close(dfd);
    io_fail("cannot fsync directory " + dir + " of", key, path, err);
  }
  ::close(dfd);
}

}  // namespace zvf
