// Key/value storage under a ZV store. Keys are '/'-separated relative paths
// ("0/vertices/c/1/2/3"); no leading '/', no empty, "." or ".." components.
//
// Contract shared by every backend:
//  - set() is atomic: a reader sees the old value, the new value, or (for a new
//    key) nothing; never a prefix. Writers on a shared filesystem never lock.
//  - get() of a missing key returns std::nullopt; it is not an error.
//  - list(prefix) returns every key under prefix (recursively), relative to the
//    store root, in no particular order. A key is its own subtree: if prefix
//    itself names a key (a file where a directory was expected), list() returns
//    it, so callers that cut "prefix/" off each key must skip it. Temporary files
//    of set() are never listed.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace zvf {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

class Store {
 public:
  virtual ~Store() = default;
  virtual std::optional<Bytes> get(const std::string& key) const = 0;
  virtual void set(const std::string& key, ByteSpan value) = 0;
  // set() of the concatenation of parts, with the same atomicity; lets callers put
  // a small header in front of a large buffer without copying it. The default
  // concatenates; backends that can write the parts directly override it.
  virtual void set_parts(const std::string& key, std::span<const ByteSpan> parts);
  // set_parts() for a key that no reader looks at yet, because the metadata that
  // publishes it (zarr.json, a partition manifest) is written afterwards: chunk
  // cells. A backend may then write a new key in place, skipping the temp file and
  // rename; an existing key is still replaced atomically. A writer killed midway
  // can leave a torn value that nothing published points to; re-running the
  // write replaces it. The default is set_parts().
  virtual void set_unpublished(const std::string& key, std::span<const ByteSpan> parts) { set_parts(key, parts); }
  virtual bool exists(const std::string& key) const = 0;
  // Removes one key; removing a missing key is not an error.
  virtual void erase(const std::string& key) = 0;
  // Removes every key under prefix (and, on a filesystem, the emptied directories).
  virtual void erase_prefix(const std::string& prefix) = 0;
  virtual std::vector<std::string> list(const std::string& prefix) const = 0;
  // Names of the direct children (keys or sub-prefixes) under prefix, without
  // the prefix; the default derives them from list(), backends may do better.
  virtual std::vector<std::string> list_dir(const std::string& prefix) const;
  // Moves a value to a new key (atomic per key on POSIX; copy+erase elsewhere).
  virtual void rename(const std::string& from, const std::string& to);
  // Human-readable location, used in error messages ("/scratch/scan.zarrvectors").
  virtual std::string describe() const = 0;
  // How many requests the engine should keep in flight for this store; 0 means
  // "no preference" (one per compute thread). Network stores ask for more.
  virtual int io_concurrency() const { return 0; }
  // True if the store's root exists at all (a directory, a bucket prefix...).
  virtual bool root_exists() const = 0;
  // Removes the root if it holds nothing (a directory a failed write created);
  // no-op where a root is not a thing of its own (object stores, memory).
  virtual void remove_root_if_empty() {}
  // Makes every value written so far durable (on stable storage) before it
  // returns: what writes run with Exec::durable call before they publish
  // anything. The default does nothing, for stores where a completed set() is
  // already as durable as it gets (S3: a PUT that succeeded) or never can be (memory).
  virtual void sync() {}
  // A hint from writes that will call sync() before they publish: start putting
  // each value on stable storage as soon as it is written, so that the disk works
  // while the engine computes and sync() waits for less. Ignored by default.
  virtual void write_back_early(bool on) { (void)on; }

  // For readers that place many values into one buffer with no staging copy:
  // the sizes first, then each value read straight into its place.
  // sizes_are_cheap(): size_of() costs no more than a stat (else readers use get()).
  virtual bool sizes_are_cheap() const { return false; }
  // Size of a value in bytes; nullopt if the key is missing. The default reads it.
  virtual std::optional<std::uint64_t> size_of(const std::string& key) const;
  // Fills `parts`, in order, with the value's leading bytes. Returns how many bytes
  // it filled (fewer than the parts hold when the value is shorter), or nullopt if
  // the key is missing. The default reads the value and copies.
  virtual std::optional<std::size_t> read_parts(const std::string& key,
                                                std::span<const std::span<std::uint8_t>> parts) const;

  void set(const std::string& key, const std::string& text) {
    set(key, ByteSpan(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  }
};

// Throws Error(InvalidArgument) naming the key if it is not a safe relative key.
void check_key(const std::string& key);

// Files under a directory. set() writes "<key>.<unique>.zvftmp" next to the
// target and renames it into place (atomic on POSIX filesystems, Lustre and GPFS
// included); parent directories are created on demand. No O_SYNC, no fsync per
// cell: a crash can lose a cell but never exposes a partial one. sync_key() fsyncs
// one key and its directory, for manifests that mark work as complete; sync()
// (syncfs) makes everything durable at once, for writes run with Exec::durable.
class PosixStore final : public Store {
 public:
  explicit PosixStore(std::string root);
  std::optional<Bytes> get(const std::string& key) const override;
  void set(const std::string& key, ByteSpan value) override;
  void set_parts(const std::string& key, std::span<const ByteSpan> parts) override;
  void set_unpublished(const std::string& key, std::span<const ByteSpan> parts) override;
  using Store::set;
  bool exists(const std::string& key) const override;
  void erase(const std::string& key) override;
  void erase_prefix(const std::string& prefix) override;
  std::vector<std::string> list(const std::string& prefix) const override;
  std::vector<std::string> list_dir(const std::string& prefix) const override;
  void rename(const std::string& from, const std::string& to) override;
  std::string describe() const override { return root_; }
  bool root_exists() const override;
  void remove_root_if_empty() override;
  bool sizes_are_cheap() const override { return true; }
  std::optional<std::uint64_t> size_of(const std::string& key) const override;
  std::optional<std::size_t> read_parts(const std::string& key,
                                        std::span<const std::span<std::uint8_t>> parts) const override;
  void sync_key(const std::string& key);
  // syncfs() of the filesystem under the root (every file on it, ours included,
  // with their directories); sync() where there is no syncfs().
  void sync() override;
  // sync_file_range(SYNC_FILE_RANGE_WRITE) on each file just written: asks the
  // kernel to start its writeback now, without waiting for it.
  void write_back_early(bool on) override { write_back_early_.store(on, std::memory_order_relaxed); }
  // Deletes the temp files that set() calls killed mid-write left in one directory
  // (not recursive). Only safe when no writer is active there (e.g. finalisation).
  std::size_t remove_temporaries(const std::string& dir_prefix);
  // Keys of such temp files under prefix (recursive), sorted; for zvf validate.
  std::vector<std::string> list_temporaries(const std::string& prefix) const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::atomic<bool> write_back_early_{false};
};

// In-process map, for tests ("memory://name" URLs share one map per name within a process).
class MemoryStore final : public Store {
 public:
  MemoryStore();
  std::optional<Bytes> get(const std::string& key) const override;
  void set(const std::string& key, ByteSpan value) override;
  using Store::set;
  bool exists(const std::string& key) const override;
  void erase(const std::string& key) override;
  void erase_prefix(const std::string& prefix) override;
  std::vector<std::string> list(const std::string& prefix) const override;
  std::string describe() const override { return "memory://"; }
  bool root_exists() const override;
  bool sizes_are_cheap() const override { return true; }

 private:
  struct State;
  std::shared_ptr<State> state_;
  friend std::shared_ptr<Store> open_store_url(const std::string&);
};

// "memory://name" -> MemoryStore; "file:///abs/path" or a plain path -> PosixStore;
// "s3://bucket/prefix" -> S3Store (zvf/s3.hpp). Other schemes throw
// Error(InvalidArgument) naming the scheme.
std::shared_ptr<Store> open_store_url(const std::string& url);

}  // namespace zvf
