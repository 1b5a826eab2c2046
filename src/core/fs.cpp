#include "src/core/fs.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/core/error.hpp"

namespace qnas::core {

namespace fs = std::filesystem;

namespace {

// Whether `text` is a process id that no process on this machine holds.
bool dead_pid(const std::string& text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  const long pid = std::strtol(text.c_str(), nullptr, 10);
  return pid > 0 && pid != ::getpid() && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH;
}

// Removes what killed processes (kill -9, power loss) left beside `target`:
// `<prefix><pid>` temporaries whose pid no longer runs here, and
// `<prefix><pid>.old` (a replaced folder) once `target` exists again. A
// process on another machine of a shared filesystem writing the same target
// would be racing this one for its final name anyway.
void remove_stale_temps(const fs::path& target, const std::string& prefix) {
  const fs::path folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code ec;
  const bool target_exists = fs::exists(target, ec);
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string pid = name.substr(prefix.size());
    const bool old = pid.size() > 4 && pid.compare(pid.size() - 4, 4, ".old") == 0;
    if (old) pid.resize(pid.size() - 4);
    if (dead_pid(pid) && (!old || target_exists)) stale.push_back(it->path());
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
}

}  // namespace

std::string read_text_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  QNAS_CHECK(in.good(), what, " file '", path, "': cannot open (", std::strerror(errno), ")");
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void ensure_dir(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  QNAS_CHECK(!ec, "cannot create directory '", dir, "': ", ec.message());
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

int64_t regular_file_size(const std::string& path, const std::string& what) {
  std::error_code ec;
  QNAS_CHECK(fs::is_regular_file(path, ec), what, " '", path, "': not a regular file",
             ec ? "; " + ec.message() : std::string());
  const auto size = fs::file_size(path, ec);
  QNAS_CHECK(!ec, what, " '", path, "': cannot read its size; ", ec.message());
  return int64_t(size);
}

std::string temp_path_for(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

void commit_file(const std::string& tmp_path, const std::string& path) {
  const int fd = ::open(tmp_path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  fs::rename(tmp_path, path, ec);
  QNAS_CHECK(!ec, "cannot move '", tmp_path, "' to '", path, "': ", ec.message());
}

void write_file_atomic(const std::string& path, const std::string& content) {
  ensure_dir(fs::path(path).parent_path().string());
  remove_stale_temps(path, fs::path(path).filename().string() + ".tmp.");
  const std::string tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    QNAS_CHECK(out.good(), "cannot write '", tmp, "': ", std::strerror(errno));
    out << content;
    out.flush();
    if (!out.good()) {
      const int err = errno;
      std::remove(tmp.c_str());  // a full disk keeps its earlier files, and no half-written temp
      QNAS_THROW("cannot write '", path, "': ", std::strerror(err), "; the previous version is intact");
    }
  }
  commit_file(tmp, path);
}

namespace {

// `.<name>.tmp.`: the staging folders of `dir` begin so, then the writer's pid.
std::string staging_prefix(const std::string& dir) { return "." + fs::path(dir).filename().string() + ".tmp."; }

void check_dir_free(const std::string& dir, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  QNAS_CHECK(fs::is_directory(dir, ec), "output '", dir, "' exists and is not a directory; expected a folder path");
  QNAS_CHECK(overwrite || fs::is_empty(dir, ec), "output folder '", dir,
             "' exists and is not empty; expected a new or empty folder (or --force to replace it)");
}

}  // namespace

StagingDir::StagingDir(const std::string& dir, bool overwrite) : dir_(dir), overwrite_(overwrite) {
  QNAS_CHECK(!dir.empty(), "output folder: empty path; expected a folder path");
  check_dir_free(dir, overwrite);
  const auto parent = fs::absolute(dir).parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  QNAS_CHECK(!ec, "cannot create folder '", parent.string(), "': ", ec.message(), "; expected a writable location");
  remove_stale_temps(dir, staging_prefix(dir));
  tmp_ = (parent / (staging_prefix(dir) + std::to_string(::getpid()))).string();
  fs::remove_all(tmp_, ec);
  fs::create_directory(tmp_, ec);
  QNAS_CHECK(!ec, "cannot write into '", parent.string(), "': ", ec.message(), "; expected a writable location");
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

std::string StagingDir::path(const std::string& name) const { return (fs::path(tmp_) / name).string(); }

void StagingDir::commit() {
  check_dir_free(dir_, overwrite_);
  std::error_code ec;
  const std::string old = tmp_ + ".old";
  const bool replace = fs::exists(dir_, ec);
  if (replace) {
    fs::rename(dir_, old, ec);
    QNAS_CHECK(!ec, "cannot move '", dir_, "' aside: ", ec.message());
  }
  fs::rename(tmp_, dir_, ec);
  if (ec) {
    std::error_code ignored;
    if (replace) fs::rename(old, dir_, ignored);
    QNAS_THROW("cannot move '", tmp_, "' to '", dir_, "': ", ec.message());
  }
  committed_ = true;
  if (replace) fs::remove_all(old, ec);
  remove_stale_temps(dir_, staging_prefix(dir_));
}

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) out += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<std::string> csv_split(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
      else if (c == '"') quoted = false;
      else out.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

std::string csv_line(const std::vector<std::string>& row) {
  std::string line;
  for (size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + csv_field(row[i]);
  return line + "\n";
}

CsvAppender::CsvAppender(const std::string& path, const std::vector<std::string>& header)
    : path_(path), columns_(header.size()) {
  ensure_dir(fs::path(path).parent_path().string());
  std::string first_line;
  if (file_exists(path)) {
    std::ifstream in(path);
    std::getline(in, first_line);
  }
  const std::string expected = csv_line(header);
  if (!first_line.empty()) {
    QNAS_CHECK(first_line + "\n" == expected, "CSV '", path, "' has header '", first_line,
               "'; expected '", expected.substr(0, expected.size() - 1),
               "' (was it written by another version or command?)");
  }
  file_ = std::fopen(path.c_str(), "a");
  QNAS_CHECK(file_ != nullptr, "cannot open '", path, "' for appending: ", std::strerror(errno));
  if (first_line.empty()) {
    std::fputs(expected.c_str(), file_);
    std::fflush(file_);
  }
}

CsvAppender::~CsvAppender() {
  if (file_) std::fclose(file_);
}

void CsvAppender::append(const std::vector<std::string>& row) {
  QNAS_CHECK(row.size() == columns_, "CSV '", path_, "': row has ", row.size(),
             " fields; expected ", columns_);
  const std::string line = csv_line(row);
  const long before = std::ftell(file_);
  if (std::fputs(line.c_str(), file_) < 0 || std::fflush(file_) != 0) {
    const int err = errno;
    // A full disk may have taken part of the row: cut it off, so the file
    // holds whole rows only (what a resumed run reads back).
    std::clearerr(file_);
    if (before >= 0 && ::ftruncate(::fileno(file_), before) == 0) std::fseek(file_, 0, SEEK_END);
    QNAS_THROW("cannot append to '", path_, "': ", std::strerror(err), "; its earlier rows are intact");
  }
  ::fsync(::fileno(file_));
}

}  // namespace qnas::core
