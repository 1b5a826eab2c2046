// Files: atomic replacement and append-only CSVs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/core/error.hpp"
#include "src/core/fs.hpp"

using namespace qnas;
namespace fs = std::filesystem;

namespace {
std::string temp_dir() {
  const auto p = fs::temp_directory_path() / ("qnas_fs_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}
// The id of a process that has ended (and been reaped).
std::string dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  return std::to_string(child);
}

void touch(const fs::path& p) { std::ofstream(p) << "partial"; }
}  // namespace

TEST(Fs, TemporariesOfKilledProcessesAreRemovedOnTheNextWrite) {
  const fs::path dir = temp_dir();
  const std::string dead = dead_pid(), alive = std::to_string(::getppid());
  touch(dir / ("a.txt.tmp." + dead));                  // killed during write_file_atomic
  touch(dir / ("a.txt.tmp." + alive));                 // a running writer's
  touch(dir / ("b.txt.tmp." + dead));                  // another file's
  fs::create_directories(dir / (".out.tmp." + dead));  // killed during an export
  fs::create_directories(dir / (".out.tmp." + dead + ".old"));
  core::write_file_atomic((dir / "a.txt").string(), "one");
  EXPECT_FALSE(fs::exists(dir / ("a.txt.tmp." + dead)));
  EXPECT_TRUE(fs::exists(dir / ("a.txt.tmp." + alive)));
  EXPECT_TRUE(fs::exists(dir / ("b.txt.tmp." + dead)));
  // The folder it replaced (.old) is kept while the export is missing (the
  // kill came between the two renames), and removed once it is back.
  core::StagingDir staging((dir / "out").string(), false);
  EXPECT_FALSE(fs::exists(dir / (".out.tmp." + dead)));
  EXPECT_TRUE(fs::exists(dir / (".out.tmp." + dead + ".old")));
  staging.commit();
  EXPECT_FALSE(fs::exists(dir / (".out.tmp." + dead + ".old")));
  fs::remove_all(dir);
}

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemp) {
  const auto dir = temp_dir();
  core::write_file_atomic(dir + "/sub/a.txt", "one");
  core::write_file_atomic(dir + "/sub/a.txt", "two");
  EXPECT_EQ(core::read_text_file(dir + "/sub/a.txt", "test"), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/sub"), fs::directory_iterator{}), 1);
  fs::remove_all(dir);
}

TEST(Fs, CsvAppendsAndChecksHeader) {
  const auto dir = temp_dir();
  const auto path = dir + "/log.csv";
  {
    core::CsvAppender csv(path, {"a", "b"});
    csv.append({"1", "x,y"});
  }
  {
    core::CsvAppender csv(path, {"a", "b"});
    csv.append({"2", "say \"hi\""});
    EXPECT_THROW(csv.append({"only one"}), Error);
  }
  EXPECT_EQ(core::read_text_file(path, "csv"), "a,b\n1,\"x,y\"\n2,\"say \"\"hi\"\"\"\n");
  EXPECT_EQ(core::csv_split("2,\"say \"\"hi\"\"\""), (std::vector<std::string>{"2", "say \"hi\""}));
  try {
    core::CsvAppender csv(path, {"a", "c"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has header 'a,b'; expected 'a,c'"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Fs, ReadMissingFileNamesIt) {
  try {
    core::read_text_file("/no/such/file.yaml", "config");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config file '/no/such/file.yaml': cannot open"), std::string::npos);
  }
}
