#pragma once
// File helpers: nothing already written is lost. Whole files are replaced
// atomically (temp file in the same folder, fsync, rename); logs are
// append-only CSVs flushed after every row.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace qnas::core {

/// Reads a whole file; `what` names it in the error ("config", "spec", ...).
std::string read_text_file(const std::string& path, const std::string& what);

/// Replaces `path` with `content` atomically; creates missing parent folders.
/// Temporaries of `path` left by killed processes are removed first.
void write_file_atomic(const std::string& path, const std::string& content);

/// Renames a finished temp file over `path` (same filesystem), after fsync.
void commit_file(const std::string& tmp_path, const std::string& path);

/// A temp path beside `path`, unique to this process.
std::string temp_path_for(const std::string& path);

/// mkdir -p.
void ensure_dir(const std::string& dir);

bool file_exists(const std::string& path);

/// The size of the regular file `path`; throws naming `what` and the path
/// when it is missing or not a regular file (a folder, say).
int64_t regular_file_size(const std::string& path, const std::string& what);

/// A folder written whole or not at all: files go into a temporary sibling
/// folder, commit() renames it to `dir`. Destroyed uncommitted (an error on
/// the way), the temporary folder is removed. `dir` must not exist, or be
/// empty, or `overwrite` be set (then it is replaced only at commit).
/// Temporary folders of `dir` left by killed processes are removed.
class StagingDir {
 public:
  StagingDir(const std::string& dir, bool overwrite);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  /// Path of `name` inside the temporary folder.
  std::string path(const std::string& name) const;
  void commit();

 private:
  std::string dir_, tmp_;
  bool overwrite_ = false, committed_ = false;
};

/// Append-only CSV: the header is written when the file is new (or empty);
/// an existing file must carry the same header. Each row is flushed.
class CsvAppender {
 public:
  CsvAppender(const std::string& path, const std::vector<std::string>& header);
  ~CsvAppender();
  CsvAppender(const CsvAppender&) = delete;
  CsvAppender& operator=(const CsvAppender&) = delete;

  void append(const std::vector<std::string>& row);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  size_t columns_;
  std::FILE* file_ = nullptr;
};

/// Quotes a CSV field when it holds a comma, quote or newline.
std::string csv_field(const std::string& value);

/// One CSV record (fields quoted as needed), newline-terminated.
std::string csv_line(const std::vector<std::string>& fields);

/// Splits one CSV line (RFC 4180 quoting).
std::vector<std::string> csv_split(const std::string& line);

}  // namespace qnas::core
