#include "src/core/fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/core/error.hpp"

namespace qnas::core {

namespace fs = std::filesystem;

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
  const std::string tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    QNAS_CHECK(out.good(), "cannot write '", tmp, "': ", std::strerror(errno));
    out << content;
    out.flush();
    QNAS_CHECK(out.good(), "write to '", tmp, "' failed: ", std::strerror(errno));
  }
  commit_file(tmp, path);
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

namespace {
std::string join_row(const std::vector<std::string>& row) {
  std::string line;
  for (size_t i = 0; i < row.size(); ++i) line += (i ? "," : "") + csv_field(row[i]);
  return line + "\n";
}
}  // namespace

CsvAppender::CsvAppender(const std::string& path, const std::vector<std::string>& header)
    : path_(path), columns_(header.size()) {
  ensure_dir(fs::path(path).parent_path().string());
  std::string first_line;
  if (file_exists(path)) {
    std::ifstream in(path);
    std::getline(in, first_line);
  }
  const std::string expected = join_row(header);
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
  const std::string line = join_row(row);
  QNAS_CHECK(std::fputs(line.c_str(), file_) >= 0 && std::fflush(file_) == 0,
             "write to '", path_, "' failed: ", std::strerror(errno));
  ::fsync(::fileno(file_));
}

}  // namespace qnas::core
